//! `sd_notify`: tell the service manager about state changes (`READY=1`).

use std::io;
use std::os::unix::net::UnixDatagram;

/// Send `state` (for example `"READY=1\nSTATUS=listening"`) to `$NOTIFY_SOCKET`.
/// Returns `Ok(false)` when the variable is not set (not running under systemd).
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(target) => send(&target, state).map(|()| true),
        None => Ok(false),
    }
}

/// Send one datagram to a notify socket: a path, or `@name` for an abstract one.
fn send(target: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let bytes = target.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
            return Ok(());
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
    socket.send_to(state.as_bytes(), target)?;
    Ok(())
}

/// `notify("READY=1")`: call it once every endpoint is listening.
pub fn notify_ready() -> io::Result<bool> {
    notify("READY=1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_one_datagram_to_a_path_or_an_abstract_name() -> io::Result<()> {
        let path = std::env::temp_dir().join(format!("endpoints-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path)?;
        send(path.as_os_str(), "READY=1")?;
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_file(&path)?;

        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let name = format!("endpoints-notify-{}", std::process::id());
            let rx = UnixDatagram::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name(
                &name,
            )?)?;
            send(
                std::ffi::OsStr::new(&format!("@{name}")),
                "READY=1\nSTATUS=up",
            )?;
            let n = rx.recv(&mut buf)?;
            assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
        }
        Ok(())
    }

    #[test]
    fn without_notify_socket_nothing_is_sent() {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            assert!(!notify_ready().expect("no error"));
        }
    }
}
