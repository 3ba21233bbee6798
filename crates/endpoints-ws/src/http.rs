//! The HTTP/1.1 upgrade (RFC 6455 §4): the client's request and the server's answer, read
//! with a bound on the head's size. The framing after it is tungstenite's.

use std::fmt;
use std::io;

use endpoints_core::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Headers read at most in a head.
const MAX_HEADERS: usize = 64;

/// What the handshake learned, attached to every `ws:` connection (client and server).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsInfo {
    /// The request target (path and query) of the upgrade.
    pub path: String,
    /// The subprotocol agreed on, if any.
    pub subprotocol: Option<String>,
    /// The peer's headers, in order as sent: the request's on a server, the response's on a
    /// client. Names as sent (compare them case-insensitively, or use [`WsInfo::header`]).
    pub headers: Vec<(String, String)>,
    /// Both ends agreed on our in-band half-close ([`HALF_CLOSE`](crate::stream::HALF_CLOSE)):
    /// `shutdown()` ends our data and writing goes on the other way, as on a TCP socket.
    /// `false` with a peer that is not ours: `shutdown()` sends Close, after which the peer
    /// sends nothing more.
    pub half_close: bool,
}

impl WsInfo {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Headers whose values `Debug` hides.
fn secret(name: &str) -> bool {
    [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ]
    .iter()
    .any(|s| name.eq_ignore_ascii_case(s))
}

impl fmt::Debug for WsInfo {
    /// Shows every header, with the values of `Authorization`, `Proxy-Authorization`,
    /// `Cookie` and `Set-Cookie` as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), if secret(n) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("WsInfo")
            .field("path", &self.path)
            .field("subprotocol", &self.subprotocol)
            .field("headers", &headers)
            .field("half_close", &self.half_close)
            .finish()
    }
}

/// A parsed head: what `httparse` gave, owned.
pub(crate) struct Head {
    /// Request method, or empty for a response.
    pub(crate) method: String,
    /// Request target, or empty for a response.
    pub(crate) target: String,
    /// Response status, or 0 for a request.
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) version: u8,
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the comma-separated header `name` holds `token` (case-insensitive).
    pub(crate) fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the `Sec-WebSocket-Extensions` headers name `extension` (its parameters, after
    /// `;`, ignored).
    pub(crate) fn offers_extension(&self, extension: &str) -> bool {
        self.list("sec-websocket-extensions").iter().any(|item| {
            item.split(';')
                .next()
                .is_some_and(|name| name.trim().eq_ignore_ascii_case(extension))
        })
    }

    /// The comma-separated items of every `name` header, trimmed, empty ones left out.
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect()
    }
}

/// Why a head could not be read.
pub(crate) enum HeadError {
    /// Longer than the bound.
    TooLarge,
    /// Not HTTP.
    Malformed(String),
    /// The connection failed or ended.
    Io(io::Error),
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).trim().to_owned(),
            )
        })
        .collect()
}

/// Read a head of at most `max` bytes from `conn`: the head and the bytes read past it.
pub(crate) async fn read_head(
    conn: &mut Connection,
    max: usize,
    request: bool,
) -> Result<(Head, Vec<u8>), HeadError> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let parsed = if request {
            let mut r = httparse::Request::new(&mut headers);
            match r.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => Some((
                    Head {
                        method: r.method.unwrap_or("").to_owned(),
                        target: r.path.unwrap_or("").to_owned(),
                        status: 0,
                        reason: String::new(),
                        version: r.version.unwrap_or(0),
                        headers: owned_headers(r.headers),
                    },
                    n,
                )),
                Ok(httparse::Status::Partial) => None,
                Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
                Err(e) => return Err(HeadError::Malformed(format!("not an HTTP request: {e}"))),
            }
        } else {
            let mut r = httparse::Response::new(&mut headers);
            match r.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => Some((
                    Head {
                        method: String::new(),
                        target: String::new(),
                        status: r.code.unwrap_or(0),
                        reason: r.reason.unwrap_or("").to_owned(),
                        version: r.version.unwrap_or(0),
                        headers: owned_headers(r.headers),
                    },
                    n,
                )),
                Ok(httparse::Status::Partial) => None,
                Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
                Err(e) => {
                    return Err(HeadError::Malformed(format!("not an HTTP response: {e}")));
                }
            }
        };
        if let Some((head, n)) = parsed {
            return Ok((head, buf.split_off(n)));
        }
        if buf.len() >= max {
            return Err(HeadError::TooLarge);
        }
        // Never read past the bound: a head that does not end costs `max` bytes at most.
        let room = (max - buf.len()).min(4096);
        let start = buf.len();
        buf.resize(start + room, 0);
        let n = match conn.read(&mut buf[start..]).await {
            Ok(n) => n,
            Err(e) => return Err(HeadError::Io(e)),
        };
        buf.truncate(start + n);
        if n == 0 {
            return Err(HeadError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the connection ended after {start} bytes of an HTTP head"),
            )));
        }
    }
}

/// A fresh `Sec-WebSocket-Key`.
pub(crate) fn new_key() -> String {
    tokio_tungstenite::tungstenite::handshake::client::generate_key()
}

/// The `Sec-WebSocket-Accept` for `key`.
pub(crate) fn accept_for(key: &str) -> String {
    derive_accept_key(key.as_bytes())
}

/// Write a short refusal and end the connection's write side.
pub(crate) async fn refuse(
    conn: &mut Connection,
    status: u16,
    reason: &str,
    extra: &[(&str, &str)],
    body: &str,
) {
    let mut text = format!("HTTP/1.1 {status} {reason}\r\n");
    for (n, v) in extra {
        text.push_str(&format!("{n}: {v}\r\n"));
    }
    text.push_str(&format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    // A client that is gone is no concern of ours.
    let _ = conn.write_all(text.as_bytes()).await;
    let _ = conn.shutdown().await;
}

/// Base64 (RFC 4648, with padding), for Basic credentials.
pub(crate) fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 (RFC 4648, padded), decoded; `None` for anything else (Twisted's `autobahn:`
/// pads every message).
pub(crate) fn unbase64(input: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if !input.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let chunks = input.len() / 4;
    for (i, q) in input.chunks(4).enumerate() {
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
            assert_eq!(
                unbase64(encoded.as_bytes()).as_deref(),
                Some(plain.as_bytes())
            );
        }
    }

    #[test]
    fn malformed_base64_is_refused() {
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9v!A==", "Zm 9"] {
            assert_eq!(unbase64(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn accept_key_matches_rfc_6455() {
        // RFC 6455 §1.3's example.
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let info = WsInfo {
            path: "/".into(),
            subprotocol: None,
            half_close: false,
            headers: vec![
                ("Authorization".into(), "Bearer s3cret".into()),
                ("cookie".into(), "id=s3cret".into()),
                ("X-Team".into(), "blue".into()),
            ],
        };
        let shown = format!("{info:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("blue"), "{shown}");
        assert_eq!(info.header("authorization"), Some("Bearer s3cret"));
    }
}
