//! Reading (and removing) the activation variables, claiming the passed descriptors, and
//! marking them close-on-exec.
#![allow(unsafe_code)] // env::remove_var (2024 edition), fcntl/getrlimit, and taking ownership of inherited descriptors.

use std::env;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::activation::{Activation, Count, LISTEN_FDS_START, Slot, VARIABLES, passed_count};

/// The cap used when the open-files limit is unlimited (Linux's default `fs.nr_open`).
const UNLIMITED_CAP: u64 = 1 << 20;

/// Read the variables, mark every passed descriptor close-on-exec (even when the names do
/// not match the count, so a child never inherits them), and take ownership of those that
/// are open. Called once per process (the state is kept in a `OnceLock`).
pub(crate) fn read() -> Result<Activation, String> {
    let var = |k: &str| env::var(k).ok();
    let (pid, fds, names) = (var(VARIABLES[0]), var(VARIABLES[1]), var(VARIABLES[2]));
    let own = std::process::id();
    match passed_count(pid.as_deref(), fds.as_deref(), own) {
        Count::Passed(n) => {
            for fd in (LISTEN_FDS_START..).take(n) {
                set_cloexec(fd);
            }
        }
        Count::TooMany(_) => {
            // A count above the open-files limit: mark what can exist, up to the first
            // descriptor that is not open (as libsystemd).
            let limit = RawFd::try_from(open_files_limit()).unwrap_or(RawFd::MAX);
            for fd in LISTEN_FDS_START..limit {
                if !set_cloexec(fd) {
                    break;
                }
            }
        }
        _ => {}
    }
    let mut a = Activation::from_vars(pid.as_deref(), fds.as_deref(), names.as_deref(), own)?;
    let numbers = a.descriptors().to_vec();
    for (slot, fd) in a.slots_mut().iter_mut().zip(numbers) {
        *slot = if is_open(fd) {
            // SAFETY: LISTEN_PID names this process, so systemd passed descriptor `fd` for
            // it to own; it is open (checked just above); and this runs once per process
            // (the caller keeps the state in a OnceLock), so no other owner is ever made.
            Slot::Ready(unsafe { OwnedFd::from_raw_fd(fd) })
        } else {
            Slot::NotOpen
        };
    }
    // Descriptors a handover passed (named `ep.…`: listeners, their locks, the readiness
    // pipe) go to the transports, which adopt them by description.
    let names = a.names().to_vec();
    for (slot, name) in a.slots_mut().iter_mut().zip(names) {
        if endpoints_util::handover::is_handover_name(&name)
            && matches!(slot, Slot::Ready(_))
            && let Slot::Ready(fd) = std::mem::replace(slot, Slot::Taken)
        {
            endpoints_util::handover::offer(name, fd);
        }
    }
    Ok(a)
}

/// Remove the three variables (as libsystemd: all of them, whatever they said), when that is
/// sound: this process has a single thread.
pub(crate) fn remove_variables() {
    if VARIABLES.iter().all(|k| env::var_os(k).is_none()) {
        return;
    }
    if single_threaded() {
        for k in VARIABLES {
            // SAFETY: only one thread exists (checked just above), so nothing can read the
            // environment concurrently.
            unsafe { env::remove_var(k) };
        }
    } else {
        tracing::warn!(
            "LISTEN_* variables left in the environment: call endpoints_systemd::init() before starting threads"
        );
    }
}

/// Mark `fd` close-on-exec; `false` if it is not open.
fn set_cloexec(fd: RawFd) -> bool {
    // SAFETY: fcntl on an integer descriptor touches no memory; on a descriptor that is not
    // open it fails with EBADF, reported as `false` (adoption reports it later).
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            return false;
        }
        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) >= 0
    }
}

/// Whether the socket `fd` is listening (`SO_ACCEPTCONN`), where socket2 has no
/// `is_listener` (it is Linux-only there).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn is_listener(fd: RawFd) -> std::io::Result<bool> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, an int owned here, and
    // updates `len`; on a descriptor that is not a socket it fails without writing.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(value != 0)
}

/// Whether `fd` is an open descriptor.
fn is_open(fd: RawFd) -> bool {
    // SAFETY: as in `set_cloexec`.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// The open-files limit (`RLIMIT_NOFILE`, soft): no descriptor this process can have open is
/// numbered at or above it (unlimited counts as 2^20).
pub(crate) fn open_files_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the struct owned here.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return UNLIMITED_CAP;
    }
    if rl.rlim_cur == libc::RLIM_INFINITY {
        UNLIMITED_CAP
    } else {
        #[allow(clippy::useless_conversion)] // rlim_t is u64 on Linux, not everywhere
        u64::try_from(rl.rlim_cur).unwrap_or(UNLIMITED_CAP)
    }
}

#[cfg(not(target_os = "macos"))]
fn single_threaded() -> bool {
    match std::fs::read_dir("/proc/self/task") {
        Ok(tasks) => tasks.count() == 1,
        Err(_) => false,
    }
}

/// macOS has no `/proc`: the task's thread count comes from `proc_pidinfo`.
#[cfg(target_os = "macos")]
fn single_threaded() -> bool {
    // SAFETY: `proc_taskinfo` is plain integers, for which all-zero bytes are valid.
    let mut info: libc::proc_taskinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_taskinfo>() as libc::c_int;
    // SAFETY: proc_pidinfo writes at most `size` bytes into `info`, owned here.
    let n = unsafe {
        libc::proc_pidinfo(
            std::process::id() as libc::c_int,
            libc::PROC_PIDTASKINFO,
            0,
            (&raw mut info).cast(),
            size,
        )
    };
    n == size && info.pti_threadnum == 1
}
