//! The kernel pipe capacity a process holds: what `splice(2)` may buffer in the kernel for it,
//! memory that its own page counts (RSS, PSS) leave out.

#![allow(unsafe_code)] // fcntl(F_GETPIPE_SZ) on a descriptor opened here; the SAFETY note says why.

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// The capacity of every pipe `pid` has open, each pipe counted once however many of its ends
/// are open, in KiB. Each is read by opening the pipe again through `/proc/PID/fd/N` (without
/// blocking) and asking `F_GETPIPE_SZ`. 0 when nothing is readable.
pub(crate) fn capacity_kib(pid: u32) -> u64 {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let mut seen = HashSet::new();
    let mut bytes = 0u64;
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if !target.starts_with("pipe:[") || !seen.insert(target) {
            continue;
        }
        let Ok(pipe) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fd.path())
        else {
            continue;
        };
        // SAFETY: `pipe` is a descriptor this function owns and keeps open across the call;
        // F_GETPIPE_SZ takes no argument and only reads the pipe's size.
        let size = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_GETPIPE_SZ) };
        if size > 0 {
            bytes += size as u64;
        }
    }
    bytes / 1024
}
