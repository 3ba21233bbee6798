//! The system calls std does not wrap: signals to a process group, marking descriptors
//! close-on-exec (in this process before a spawn, or in the child when that cannot be done),
//! and a pipe's capacity.
#![allow(unsafe_code)] // kill(2) on a group, close_range(2)/fcntl(2); each has a SAFETY note.

use std::io;

/// Send `signal` to every process of the group `pgid` (`kill(-pgid, signal)`). `ESRCH` (the
/// group is empty) is `Ok(false)`; `Ok(true)` when it was sent.
pub(crate) fn signal_group(pgid: u32, signal: libc::c_int) -> io::Result<bool> {
    // A pgid of 0 or 1 would address our own group or every process we may signal.
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return Ok(false);
    };
    if pgid <= 1 {
        return Ok(false);
    }
    // SAFETY: kill takes two integers and touches no memory of ours. `-pgid` with pgid > 1
    // addresses only the process group the child leads (it was started with
    // `process_group(0)`, so its pid is the group's id).
    let r = unsafe { libc::kill(-pgid, signal) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Whether the group `pgid` still has a process (signal 0 checks without sending).
pub(crate) fn group_exists(pgid: u32) -> bool {
    signal_group(pgid, 0).unwrap_or(true)
}

/// The highest descriptor number open in this process now (an upper bound for the
/// fallback loop in [`cloexec_from_3`]). Descriptors opened later by std or tokio are
/// close-on-exec already.
pub(crate) fn highest_open_fd() -> libc::c_int {
    let listed = std::fs::read_dir("/proc/self/fd").or_else(|_| std::fs::read_dir("/dev/fd"));
    match listed {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::c_int>().ok())
            .max()
            .unwrap_or(2),
        // No listing: the usual soft limit.
        Err(_) => 1023,
    }
}

/// Mark every descriptor of this process from 3 up close-on-exec (`close_range(3, ~0,
/// CLOSE_RANGE_CLOEXEC)`, Linux 5.11), so that a child started next gets 0, 1 and 2 only,
/// without a `pre_exec` hook: std then starts it with `posix_spawn` (a vfork), not a fork of
/// this whole process. What std and tokio open has the flag already; what changes is a
/// descriptor this process inherited without it (a jobserver pipe, a leaked socket), which
/// then reaches no child of ours. Returns whether it worked; if not, the caller falls back to
/// [`cloexec_from_3`].
pub(crate) fn mark_all_cloexec() -> bool {
    close_range_cloexec()
}

/// Ask for `bytes` of capacity in the pipe `fd` (Linux `F_SETPIPE_SZ`; the default is 64
/// KiB, and an unprivileged process may go up to `/proc/sys/fs/pipe-max-size`, 1 MiB by
/// default). Best effort: a refusal leaves the pipe as it was.
#[cfg(target_os = "linux")]
pub(crate) fn grow_pipe(fd: &impl std::os::fd::AsRawFd, bytes: libc::c_int) {
    // SAFETY: fcntl on a descriptor the caller holds open for the call; F_SETPIPE_SZ changes
    // the pipe's capacity only and touches no memory of ours.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) };
}

/// No `F_SETPIPE_SZ` here: pipes keep their size.
#[cfg(not(target_os = "linux"))]
pub(crate) fn grow_pipe(_fd: &impl std::os::fd::AsRawFd, _bytes: libc::c_int) {}

/// Have `command`'s child mark every descriptor from 3 up close-on-exec just before it runs
/// the program, so that it starts with 0, 1 and 2 only, whatever this process inherited
/// without `O_CLOEXEC` (a systemd socket, a jobserver pipe). Marking, not closing: std's own
/// exec-error pipe must stay open until `execve`, so that a program that cannot be started
/// is still an error of `spawn`.
pub(crate) fn cloexec_from_3(command: &mut tokio::process::Command) {
    let highest = highest_open_fd();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes raw system calls (close_range, fcntl) and
    // neither allocates nor takes locks. `highest` is a plain integer copied in.
    unsafe {
        command.pre_exec(move || {
            if close_range_cloexec() {
                return Ok(());
            }
            for fd in 3..=highest {
                // SAFETY: fcntl on a descriptor number that may or may not be open: an
                // unopened one gives EBADF, which is ignored.
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
}

/// `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)` (Linux 5.11): whether it worked.
#[cfg(target_os = "linux")]
fn close_range_cloexec() -> bool {
    /// `CLOSE_RANGE_CLOEXEC` from `<linux/close_range.h>`.
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: a raw system call with three integer arguments; it changes descriptor flags
    // only and touches no memory. Async-signal-safe (no allocation, no locks).
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    r == 0
}

/// No `close_range` here: the caller falls back to `fcntl` on each descriptor.
#[cfg(not(target_os = "linux"))]
fn close_range_cloexec() -> bool {
    false
}
