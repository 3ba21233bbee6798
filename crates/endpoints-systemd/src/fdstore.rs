//! `sd_notify` with descriptors (`FDSTORE=1`: systemd keeps them across a restart) and the
//! monotonic clock `RELOADING=1` wants beside it (`MONOTONIC_USEC=`).
#![allow(unsafe_code)] // sendmsg with SCM_RIGHTS, clock_gettime.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;

/// The most descriptors sent in one message (systemd's own limit per datagram is 253,
/// `SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

/// Send `state` with `fds` attached (`SCM_RIGHTS`) to `$NOTIFY_SOCKET`, for example
/// `"FDSTORE=1\nFDNAME=web"`. Returns `Ok(false)` when the variable is not set.
pub fn notify_with_fds(state: &str, fds: &[BorrowedFd<'_>]) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(target) => send_with_fds(&target, state, fds).map(|()| true),
        None => Ok(false),
    }
}

/// `CLOCK_MONOTONIC` in microseconds, as systemd wants in `MONOTONIC_USEC=` beside
/// `RELOADING=1`.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, owned here; CLOCK_MONOTONIC exists
    // on every supported system, and on an error `ts` stays zero.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1000)
}

fn connect(target: &OsStr) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    let bytes = target.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.connect_addr(&addr)?;
            return Ok(socket);
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = name;
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract NOTIFY_SOCKET needs Linux",
            ));
        }
    }
    socket.connect(target)?;
    Ok(socket)
}

pub(crate) fn send_with_fds(target: &OsStr, state: &str, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} descriptors in one notification; at most {MAX_FDS}",
                fds.len()
            ),
        ));
    }
    let socket = connect(target)?;
    if fds.is_empty() {
        socket.send(state.as_bytes())?;
        return Ok(());
    }
    let payload = std::mem::size_of_val(&fds[0].as_raw_fd()) * fds.len();
    let payload = libc::c_uint::try_from(payload).unwrap_or(libc::c_uint::MAX);
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
    // u64 words: aligned for a cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: state.as_ptr() as *mut libc::c_void,
        iov_len: state.len(),
    };
    // SAFETY: all-zero bytes are a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points to `space` zeroed, aligned bytes, enough for one header
    // with `payload` bytes of data (CMSG_SPACE), so CMSG_FIRSTHDR is non-null and the header
    // and CMSG_DATA's `fds.len()` ints lie inside `control`.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as _;
        let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
        for (i, fd) in fds.iter().enumerate() {
            data.add(i).write_unaligned(fd.as_raw_fd());
        }
    }
    // SAFETY: `msg` and everything it points to (the payload, `control`) live until sendmsg
    // returns; the descriptors are borrowed, hence open.
    let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;

    /// Receive one datagram and the descriptors attached to it.
    fn receive(socket: &UnixDatagram) -> (String, Vec<OwnedFd>) {
        let mut buf = [0u8; 512];
        let mut control = vec![0u64; 64];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: all-zero bytes are a valid msghdr.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = (control.len() * 8) as _;
        // SAFETY: msg points to `buf` and `control`, owned here and alive during the call.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        assert!(n >= 0, "recvmsg: {}", io::Error::last_os_error());
        let mut fds = Vec::new();
        // SAFETY: the kernel filled `control` with msg_controllen bytes of headers; the CMSG_*
        // walk stays inside them, and each SCM_RIGHTS descriptor is new and ours to own.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                    let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    for i in 0..bytes / 4 {
                        fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        (
            String::from_utf8_lossy(&buf[..n as usize]).into_owned(),
            fds,
        )
    }

    /// A notify socket, as systemd's, receives the message and the very sockets (the same
    /// inode) with SCM_RIGHTS.
    #[test]
    fn fdstore_sends_the_descriptors_themselves() -> io::Result<()> {
        let path = std::env::temp_dir().join(format!("endpoints-fdstore-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path)?;
        let a = std::net::TcpListener::bind("127.0.0.1:0")?;
        let b = std::net::TcpListener::bind("127.0.0.1:0")?;
        send_with_fds(
            path.as_os_str(),
            "FDSTORE=1\nFDNAME=ep.web#0",
            &[a.as_fd(), b.as_fd()],
        )?;
        let (text, fds) = receive(&rx);
        assert_eq!(text, "FDSTORE=1\nFDNAME=ep.web#0");
        assert_eq!(fds.len(), 2);
        let ino = |fd: BorrowedFd<'_>| {
            std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .map(|m| m.ino())
                .expect("fd")
        };
        assert_eq!(ino(fds[0].as_fd()), ino(a.as_fd()));
        assert_eq!(ino(fds[1].as_fd()), ino(b.as_fd()));
        // Without descriptors, a plain datagram.
        send_with_fds(path.as_os_str(), "READY=1", &[])?;
        let (text, fds) = receive(&rx);
        assert_eq!((text.as_str(), fds.len()), ("READY=1", 0));
        std::fs::remove_file(&path)?;
        assert!(monotonic_usec() > 0);
        Ok(())
    }
}
