//! Reading (and removing) the activation variables, and marking the passed descriptors
//! close-on-exec.
#![allow(unsafe_code)] // env::remove_var (2024 edition) and fcntl on inherited descriptors.

use std::env;

use crate::activation::{Activation, VARIABLES};

/// Read the variables; mark every passed descriptor close-on-exec; with `remove`, remove the
/// variables when that is sound (this process has a single thread).
pub(crate) fn read(remove: bool) -> Result<Activation, String> {
    let var = |k: &str| env::var(k).ok();
    let (pid, fds, names) = (var(VARIABLES[0]), var(VARIABLES[1]), var(VARIABLES[2]));
    let result = Activation::from_vars(
        pid.as_deref(),
        fds.as_deref(),
        names.as_deref(),
        std::process::id(),
    );
    if let Ok(a) = &result {
        for &fd in a.descriptors() {
            set_cloexec(fd);
        }
    }
    // As libsystemd: all three are removed, whatever they said.
    if remove && (pid.is_some() || fds.is_some() || names.is_some()) {
        if single_threaded() {
            for k in VARIABLES {
                // SAFETY: only one thread exists (checked just above), so nothing can read
                // the environment concurrently.
                unsafe { env::remove_var(k) };
            }
        } else {
            tracing::warn!(
                "LISTEN_* variables left in the environment: call endpoints_systemd::init() before starting threads"
            );
        }
    }
    result
}

fn set_cloexec(fd: i32) {
    // SAFETY: fcntl on an integer descriptor touches no memory; on a descriptor that is not
    // open it fails with EBADF, which is ignored here (adoption reports it later).
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// Whether `fd` is an open descriptor.
pub(crate) fn is_open(fd: i32) -> bool {
    // SAFETY: as in `set_cloexec`.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

fn single_threaded() -> bool {
    match std::fs::read_dir("/proc/self/task") {
        Ok(tasks) => tasks.count() == 1,
        Err(_) => false,
    }
}
