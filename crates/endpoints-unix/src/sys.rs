//! The two system calls std does not wrap: a liveness check for a Twisted lock's pid, and a
//! `chmod` that never follows a symbolic link.
#![allow(unsafe_code)] // kill(pid, 0) and fchmodat(AT_SYMLINK_NOFOLLOW); each call has a SAFETY note.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Whether a process with this id exists (`kill(pid, 0)`: `EPERM` means it exists but is not
/// ours to signal).
pub(crate) fn process_exists(pid: libc::pid_t) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; kill only checks that `pid` exists and may be signalled.
    // A positive pid never addresses a process group.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// `chmod` that fails instead of following a symbolic link at `path`.
pub(crate) fn chmod_nofollow(path: &Path, mode: u32) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call; fchmodat reads it and
    // touches no other memory.
    let r = unsafe {
        libc::fchmodat(
            libc::AT_FDCWD,
            c.as_ptr(),
            mode as libc::mode_t,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
