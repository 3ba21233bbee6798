//! Raise the soft limit on open files to the hard limit, as Go programs do at start: a relay
//! holds up to six descriptors per connection (two sockets, two pipes), and the usual soft
//! limit of 1,024 would cap it at about 170 connections.
#![allow(unsafe_code)] // getrlimit/setrlimit on a struct owned here; each call has a SAFETY note.

/// Raise `RLIMIT_NOFILE`'s soft limit to its hard limit; returns the soft limit in force.
pub(crate) fn raise_open_files() -> std::io::Result<u64> {
    // SAFETY: all-zero is a valid `rlimit`; getrlimit fills it.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur >= lim.rlim_max {
        return Ok(lim.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit whose soft limit does not exceed its hard limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(raised.rlim_cur)
}

/// The soft limit on open files in force.
pub(crate) fn open_files() -> std::io::Result<u64> {
    // SAFETY: all-zero is a valid `rlimit`; getrlimit fills it.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}
