//! The system calls std does not wrap: signals to a process group, marking descriptors
//! close-on-exec (in the child between fork and exec; in this whole process only on the
//! opt-in), and a pipe's capacity.
#![allow(unsafe_code)] // kill(2) on a group, close_range(2)/getdents64(2)/fcntl(2); each has a SAFETY note.

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

/// Mark every descriptor of this process from 3 up close-on-exec (`close_range(3, ~0,
/// CLOSE_RANGE_CLOEXEC)`, Linux 5.11), so that a child started next gets 0, 1 and 2 only,
/// without a `pre_exec` hook: std then starts it with `posix_spawn` (a vfork), not a fork of
/// this whole process. This changes the flags of descriptors the process may pass to other
/// children on purpose: only with the opt-in [`crate::set_process_wide_cloexec`]. Returns
/// whether it worked.
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
/// the program, so that it starts with 0, 1 and 2 only, whatever this process inherited or
/// another thread opened without `O_CLOEXEC` (a systemd socket, a jobserver pipe). The
/// child's descriptor table is its own copy after the fork: this process's flags do not
/// change. Marking, not closing (`close_range(3, ~0, 0)`): std's own exec-error pipe must
/// stay open until `execve`, so that a program that cannot be started is still an error of
/// `spawn`; every marked descriptor is closed by that `execve`.
///
/// `close_range(CLOSE_RANGE_CLOEXEC)` where the kernel has it (Linux 5.11); else each
/// descriptor listed in `/proc/self/fd` (read with raw `getdents64`, no allocation); else
/// each number below the open-files limit.
pub(crate) fn cloexec_in_child(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: it makes raw system calls (close_range, open,
    // getdents64, getrlimit, fcntl, close) on a buffer on its stack, and neither allocates
    // nor takes locks.
    unsafe {
        command.pre_exec(|| {
            if close_range_cloexec() || cloexec_listed() {
                return Ok(());
            }
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit fills the struct on our stack.
            let highest = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur.min(1 << 20) as libc::c_int
            } else {
                1 << 16
            };
            for fd in 3..highest {
                mark_cloexec(fd);
            }
            Ok(())
        });
    }
}

/// Set `FD_CLOEXEC` on `fd` if it is open and lacks it (an unopened number gives `EBADF`,
/// ignored). Async-signal-safe.
fn mark_cloexec(fd: libc::c_int) {
    // SAFETY: fcntl on a descriptor number that may or may not be open; it changes that
    // descriptor's flags only and touches no memory.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// In the child: mark each descriptor from 3 up that `/proc/self/fd` lists. Async-signal-safe:
/// `open`, `getdents64` into a buffer on the stack, `close`. Whether the listing could be read.
#[cfg(target_os = "linux")]
fn cloexec_listed() -> bool {
    // SAFETY: open of a NUL-terminated constant path; the descriptor is closed below.
    let dir = unsafe {
        libc::open(
            c"/proc/self/fd".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return false;
    }
    let mut buf = [0u8; 4096];
    let mut ok = true;
    loop {
        // SAFETY: getdents64 writes at most `buf.len()` bytes into `buf`, on our stack.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir,
                buf.as_mut_ptr(),
                buf.len() as libc::c_uint,
            )
        };
        if n < 0 {
            ok = false;
            break;
        }
        if n == 0 {
            break;
        }
        let n = n as usize;
        // struct linux_dirent64: u64 d_ino, i64 d_off, u16 d_reclen, u8 d_type, then the
        // NUL-terminated name.
        let mut at = 0;
        while at + 19 < n {
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            if reclen == 0 || at + reclen > n {
                break;
            }
            let mut fd: libc::c_int = 0;
            let mut digits = 0;
            for &b in &buf[at + 19..at + reclen] {
                if !b.is_ascii_digit() || digits > 9 {
                    break;
                }
                fd = fd * 10 + libc::c_int::from(b - b'0');
                digits += 1;
            }
            if digits > 0 && fd >= 3 && fd != dir {
                mark_cloexec(fd);
            }
            at += reclen;
        }
    }
    // SAFETY: the descriptor opened above, closed once.
    unsafe { libc::close(dir) };
    ok
}

/// No `/proc/self/fd` listing here: the caller marks each number below the limit.
#[cfg(not(target_os = "linux"))]
fn cloexec_listed() -> bool {
    false
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
