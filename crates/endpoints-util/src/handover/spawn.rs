//! Start the successor with the passed descriptors at 3, 4, ... (the systemd protocol), and
//! `LISTEN_PID` set to its own process id, which is only known once it is forked: the child
//! writes its pid into an environment entry prepared before the fork and calls `execve` itself,
//! doing nothing between fork and exec that allocates or takes a lock.
#![allow(unsafe_code)] // fcntl(F_DUPFD_CLOEXEC), and dup2/execve between fork and exec.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::c_char;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The variables of the protocol (the successor gets ours, never the ones we were given).
const VARIABLES: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];
const PID_PREFIX: &[u8] = b"LISTEN_PID=";

/// What the child needs between fork and exec, all allocated before the fork.
struct Exec {
    program: CString,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _env: Vec<CString>,
    env_ptrs: Vec<*const c_char>,
    /// `LISTEN_PID=` and room for the digits and the NUL.
    pid_entry: Box<[u8; 40]>,
    pid_slot: usize,
    /// The descriptors to place at 3, 4, ...: all numbered above that range.
    high: Vec<RawFd>,
}

// SAFETY: the raw pointers point into the CStrings and the box owned by the same value, whose
// heap buffers never move; they are only read by `execve` in the forked child.
unsafe impl Send for Exec {}
// SAFETY: as for Send; the value is only used (mutably) in the child, which has one thread.
unsafe impl Sync for Exec {}

impl Exec {
    /// In the forked child: place the descriptors, write the pid, exec. Returns only on error.
    fn run(&mut self) -> io::Error {
        for (i, &fd) in self.high.iter().enumerate() {
            let target = FIRST + i as RawFd;
            // SAFETY: dup2 is async-signal-safe; `fd` is open (owned by the parent's `high`
            // until after the spawn), and `target` is in 3..3+n, above every number below it
            // that std's stdio set-up uses; the new descriptor has no close-on-exec flag.
            if unsafe { libc::dup2(fd, target) } < 0 {
                return io::Error::last_os_error();
            }
        }
        let mut pid = std::process::id();
        let mut digits = [0u8; 10];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (pid % 10) as u8;
            n += 1;
            pid /= 10;
            if pid == 0 {
                break;
            }
        }
        let entry = &mut self.pid_entry[..];
        for i in 0..n {
            entry[PID_PREFIX.len() + i] = digits[n - 1 - i];
        }
        entry[PID_PREFIX.len() + n] = 0;
        self.env_ptrs[self.pid_slot] = self.pid_entry.as_ptr().cast();
        // SAFETY: every pointer points to a NUL-terminated string owned by `self`, and both
        // arrays end with a null pointer; execve only returns on error.
        unsafe {
            libc::execve(
                self.program.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.env_ptrs.as_ptr(),
            );
        }
        io::Error::last_os_error()
    }
}

/// The first passed descriptor.
pub(super) const FIRST: RawFd = 3;

/// Start `program` with `args`, passing `fds` at 3, 4, ... named as given.
pub(super) fn spawn(
    program: &Path,
    args: &[OsString],
    fds: Vec<(String, OwnedFd)>,
) -> io::Result<tokio::process::Child> {
    let path = resolve(program)?;
    let above = FIRST + RawFd::try_from(fds.len()).unwrap_or(RawFd::MAX - FIRST);
    let mut high = Vec::with_capacity(fds.len());
    for (_, fd) in &fds {
        // SAFETY: fcntl on a descriptor borrowed from an OwnedFd; F_DUPFD_CLOEXEC returns a new
        // descriptor numbered `above` or more, which nothing else owns, or -1.
        let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, above) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `r` was just returned by fcntl: open, and owned by nobody else.
        high.push(unsafe { OwnedFd::from_raw_fd(r) });
    }
    let names: Vec<&str> = fds.iter().map(|(n, _)| n.as_str()).collect();
    let cstr = |b: &[u8]| {
        CString::new(b).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} contains a NUL byte: it cannot be passed to the successor",
                    String::from_utf8_lossy(b)
                ),
            )
        })
    };
    let program_c = cstr(path.as_os_str().as_bytes())?;
    let mut argv = vec![cstr(program.as_os_str().as_bytes())?];
    for a in args {
        argv.push(cstr(a.as_bytes())?);
    }
    let mut env = Vec::new();
    for (k, v) in std::env::vars_os() {
        if VARIABLES.iter().any(|x| k.as_bytes() == x.as_bytes()) {
            continue;
        }
        let mut kv = k.into_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        env.push(cstr(&kv)?);
    }
    env.push(cstr(format!("LISTEN_FDS={}", fds.len()).as_bytes())?);
    env.push(cstr(
        format!("LISTEN_FDNAMES={}", names.join(":")).as_bytes(),
    )?);
    let mut pid_entry = Box::new([0u8; 40]);
    pid_entry[..PID_PREFIX.len()].copy_from_slice(PID_PREFIX);
    let argv_ptrs: Vec<*const c_char> = argv
        .iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut env_ptrs: Vec<*const c_char> = env.iter().map(|c| c.as_ptr()).collect();
    let pid_slot = env_ptrs.len();
    env_ptrs.push(pid_entry.as_ptr().cast());
    env_ptrs.push(std::ptr::null());
    let mut exec = Exec {
        program: program_c,
        _argv: argv,
        argv_ptrs,
        _env: env,
        env_ptrs,
        pid_entry,
        pid_slot,
        high: high.iter().map(AsRawFd::as_raw_fd).collect(),
    };
    let mut cmd = tokio::process::Command::new(&path);
    // SAFETY: the closure only calls async-signal-safe functions (dup2, getpid, execve) on
    // memory allocated before the fork; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || Err(exec.run()));
    }
    let child = cmd.spawn();
    // The child has its copies (or failed): the parent's duplicates close here.
    drop(high);
    drop(fds);
    child
}

/// `program` as a path to execute: as given when it has a `/`, else the first match in `PATH`.
fn resolve(program: &Path) -> io::Result<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(program.to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if std::fs::metadata(&candidate).is_ok_and(|m| m.is_file()) {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "{} is not in PATH: give the successor's path",
            program.display()
        ),
    ))
}
