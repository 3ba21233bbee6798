//! The `socks5:` client: RFC 1928 CONNECT, RFC 1929 user name and password.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use endpoints_core::params::{Args, Param, ParamKind};
use endpoints_core::{ClientEndpoint, Description, ParseError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::common::{Credentials, Protocol, Target, build, common_params, target_refusal, worded};

const COMMON: [Param; 6] = common_params();

/// Parameters of the `socks5:` client.
pub static SOCKS5_PARAMS: &[Param] = &[
    Param::required("host", ParamKind::Host)
        .at(0)
        .help("target host name or IP address, as the proxy should reach it"),
    Param::required("port", ParamKind::Port)
        .at(1)
        .help("target port"),
    COMMON[0],
    COMMON[1],
    COMMON[2],
    COMMON[3],
    COMMON[4],
    Param::optional("resolve", ParamKind::Choice(&["remote", "local"]))
        .default("remote")
        .help("`remote`: send host names to the proxy (curl's socks5h); `local`: resolve them here and send the address"),
    COMMON[5],
];

/// A SOCKS5 reply code in words (RFC 1928 §6), and the I/O error kind it maps to.
pub fn reply_words(code: u8) -> (&'static str, io::ErrorKind) {
    match code {
        1 => ("general SOCKS server failure", io::ErrorKind::Other),
        2 => (
            "connection not allowed by ruleset",
            io::ErrorKind::PermissionDenied,
        ),
        3 => ("network unreachable", io::ErrorKind::NetworkUnreachable),
        4 => ("host unreachable", io::ErrorKind::HostUnreachable),
        5 => ("connection refused", io::ErrorKind::ConnectionRefused),
        6 => ("TTL expired", io::ErrorKind::TimedOut),
        7 => ("command not supported", io::ErrorKind::Unsupported),
        8 => ("address type not supported", io::ErrorKind::Unsupported),
        _ => ("unassigned reply code", io::ErrorKind::Other),
    }
}

fn eof(e: io::Error, proxy: &str, during: &str) -> io::Error {
    let words = if e.kind() == io::ErrorKind::UnexpectedEof {
        format!("the SOCKS5 proxy `{proxy}` closed the connection {during}")
    } else {
        format!("SOCKS5 proxy `{proxy}`, {during}: {e}")
    };
    worded(e.kind(), words, Some(e))
}

/// Run the SOCKS5 CONNECT handshake for `target` on `stream` (a connection to the proxy),
/// authenticating with `credentials` if the proxy asks. Reads exactly the proxy's replies,
/// nothing past them. Returns the bound address the proxy reported, when it is an IP address.
/// `proxy` names the proxy in errors.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    target: &Target,
    credentials: Option<&Credentials>,
    proxy: &str,
) -> io::Result<Option<SocketAddr>> {
    let greeting: &[u8] = match credentials {
        Some(_) => &[5, 2, 0, 2],
        None => &[5, 1, 0],
    };
    stream
        .write_all(greeting)
        .await
        .map_err(|e| eof(e, proxy, "sending the greeting"))?;
    let mut choice = [0u8; 2];
    stream
        .read_exact(&mut choice)
        .await
        .map_err(|e| eof(e, proxy, "before choosing an authentication method"))?;
    if choice[0] != 5 {
        return Err(not_socks5(proxy, choice[0]));
    }
    match (choice[1], credentials) {
        (0, _) => {}
        (2, Some(c)) => authenticate(stream, c, proxy).await?,
        (0xFF, None) | (2, None) => {
            return Err(worded(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the SOCKS5 proxy `{proxy}` requires authentication: give `user=` and `passwordFile=` (or `password=`, `passwordEnv=`)"
                ),
                None,
            ));
        }
        (0xFF, Some(c)) => {
            return Err(worded(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the SOCKS5 proxy `{proxy}` accepts neither no authentication nor a user name and password (offered for user `{}`)",
                    c.user
                ),
                None,
            ));
        }
        (m, _) => {
            return Err(worded(
                io::ErrorKind::InvalidData,
                format!(
                    "the SOCKS5 proxy `{proxy}` chose authentication method {m:#04x}, which was not offered"
                ),
                None,
            ));
        }
    }

    let mut request = vec![5, 1, 0];
    match target {
        Target::Ip(SocketAddr::V4(a)) => {
            request.push(1);
            request.extend(a.ip().octets());
        }
        Target::Ip(SocketAddr::V6(a)) => {
            request.push(4);
            request.extend(a.ip().octets());
        }
        Target::Name(name, _) => {
            // Checked when the description was built: 1 to 255 bytes.
            request.push(3);
            request.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
            request.extend(name.as_bytes().iter().take(255));
        }
    }
    request.extend(target.port().to_be_bytes());
    stream
        .write_all(&request)
        .await
        .map_err(|e| eof(e, proxy, "sending the CONNECT request"))?;

    let mut head = [0u8; 4];
    stream
        .read_exact(&mut head)
        .await
        .map_err(|e| eof(e, proxy, "before answering the CONNECT request"))?;
    if head[0] != 5 {
        return Err(not_socks5(proxy, head[0]));
    }
    if head[1] != 0 {
        let (words, kind) = reply_words(head[1]);
        return Err(target_refusal(
            kind,
            format!(
                "the SOCKS5 proxy `{proxy}` could not connect to {target}: {words} (reply code {})",
                head[1]
            ),
            Some(head[1]),
        ));
    }
    if head[2] != 0 {
        return Err(bad_byte(
            proxy,
            "byte 2 of its CONNECT reply (RSV, reserved)",
            head[2],
            0,
        ));
    }
    let bound = match head[3] {
        1 => {
            let mut a = [0u8; 6];
            stream
                .read_exact(&mut a)
                .await
                .map_err(|e| eof(e, proxy, "in its reply"))?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[4], a[5]])))
        }
        4 => {
            let mut a = [0u8; 18];
            stream
                .read_exact(&mut a)
                .await
                .map_err(|e| eof(e, proxy, "in its reply"))?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(octets);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([a[16], a[17]]),
            ))
        }
        3 => {
            let mut len = [0u8; 1];
            stream
                .read_exact(&mut len)
                .await
                .map_err(|e| eof(e, proxy, "in its reply"))?;
            let mut rest = vec![0u8; usize::from(len[0]) + 2];
            stream
                .read_exact(&mut rest)
                .await
                .map_err(|e| eof(e, proxy, "in its reply"))?;
            None
        }
        t => {
            return Err(worded(
                io::ErrorKind::InvalidData,
                format!("the SOCKS5 proxy `{proxy}` replied with unknown address type {t}"),
                None,
            ));
        }
    };
    Ok(bound)
}

async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    c: &Credentials,
    proxy: &str,
) -> io::Result<()> {
    // Lengths checked when the description was built (1 to 255 bytes each); a caller of this
    // public function with longer ones gets them cut, and the proxy refuses.
    let user = &c.user.as_bytes()[..c.user.len().min(255)];
    let pass = &c.password.as_bytes()[..c.password.len().min(255)];
    let mut msg = vec![1, user.len() as u8];
    msg.extend(user);
    msg.push(pass.len() as u8);
    msg.extend(pass);
    stream
        .write_all(&msg)
        .await
        .map_err(|e| eof(e, proxy, "sending the user name and password"))?;
    let mut status = [0u8; 2];
    stream.read_exact(&mut status).await.map_err(|e| {
        eof(
            e,
            proxy,
            "after the user name and password (authentication failed?)",
        )
    })?;
    if status[0] != 1 {
        return Err(bad_byte(
            proxy,
            "byte 0 of its authentication reply (the RFC 1929 version)",
            status[0],
            1,
        ));
    }
    if status[1] != 0 {
        return Err(worded(
            io::ErrorKind::PermissionDenied,
            format!(
                "authentication failed: the SOCKS5 proxy `{proxy}` rejected the password of user `{}`",
                c.user
            ),
            None,
        ));
    }
    Ok(())
}

/// A byte of the proxy's reply that the protocol fixes, with another value.
fn bad_byte(proxy: &str, which: &str, got: u8, expected: u8) -> io::Error {
    worded(
        io::ErrorKind::InvalidData,
        format!(
            "the SOCKS5 proxy `{proxy}` broke the protocol: {which} is {got:#04x}, not {expected:#04x}"
        ),
        None,
    )
}

fn not_socks5(proxy: &str, first: u8) -> io::Error {
    let hint = if first == b'H' {
        " (it answered like an HTTP server: use `httpconnect:`?)"
    } else {
        ""
    };
    worded(
        io::ErrorKind::InvalidData,
        format!("`{proxy}` is not a SOCKS5 proxy: its reply starts with byte {first:#04x}{hint}"),
        None,
    )
}

fn build_socks5(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    crate::common::unescaped_proxy(d)?;
    let args = Args::parse(d, SOCKS5_PARAMS)?;
    let resolve_local = args.required("resolve")?.choice(&["remote", "local"])? == "local";
    build(&args, Protocol::Socks5 { resolve_local }, Some(255))
}

endpoints_core::register_client! {
    prefix: "socks5",
    summary: "connect through a SOCKS5 proxy (RFC 1928/1929) reached by any client description; host names resolved by the proxy",
    params: SOCKS5_PARAMS,
    build: build_socks5,
}
