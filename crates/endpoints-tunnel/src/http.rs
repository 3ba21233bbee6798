//! The `httpconnect:` client: HTTP CONNECT (RFC 9110 §9.3.6) with Basic proxy authentication.

use std::io;

use endpoints_core::params::{Args, Param, ParamKind};
use endpoints_core::{ClientEndpoint, Description, ParseError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::common::{Credentials, Protocol, Target, build, common_params, worded};

const COMMON: [Param; 6] = common_params();

/// Parameters of the `httpconnect:` client.
pub static HTTPCONNECT_PARAMS: &[Param] = &[
    Param::required("host", ParamKind::Host)
        .at(0)
        .help("target host name or IP address, sent to the proxy in the CONNECT request"),
    Param::required("port", ParamKind::Port)
        .at(1)
        .help("target port"),
    COMMON[0],
    COMMON[1],
    COMMON[2],
    COMMON[3],
    COMMON[4],
    COMMON[5],
];

/// The largest response head accepted from the proxy, interim (1xx) answers before it
/// included.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// The most interim (1xx) answers accepted before the answer to CONNECT.
pub const MAX_INTERIM_ANSWERS: usize = 8;

/// Base64 (RFC 4648, with padding) for the Basic credentials.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The CONNECT request for `target`.
pub fn request(target: &Target, credentials: Option<&Credentials>) -> String {
    let authority = target.authority();
    let mut r = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(c) = credentials {
        let token = base64(format!("{}:{}", c.user, c.password).as_bytes());
        r.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    r.push_str("\r\n");
    r
}

fn io_words(e: io::Error, proxy: &str) -> io::Error {
    let words = format!("HTTP proxy `{proxy}`: {e}");
    worded(e.kind(), words, Some(e))
}

/// Send a CONNECT request for `target` on `stream` (a connection to the proxy) and read the
/// answer. On a 2xx answer, returns the bytes that came after the response head: they
/// belong to the tunnel. Any other answer is an error with its status and reason. `proxy`
/// names the proxy in errors.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    target: &Target,
    credentials: Option<&Credentials>,
    proxy: &str,
) -> io::Result<Vec<u8>> {
    stream
        .write_all(request(target, credentials).as_bytes())
        .await
        .map_err(|e| io_words(e, proxy))?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    // Bytes of interim answers skipped, and how many: both bounded, so that a proxy that
    // answers `100 Continue` forever is an error even without a `timeout=`.
    let (mut skipped, mut interim) = (0usize, 0usize);
    loop {
        // A complete head in `buf`? (1xx interim answers are skipped.)
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let code = response.code.unwrap_or(0);
                let reason = response.reason.unwrap_or("").to_owned();
                if (100..200).contains(&code) {
                    interim += 1;
                    if interim > MAX_INTERIM_ANSWERS {
                        return Err(worded(
                            io::ErrorKind::InvalidData,
                            format!(
                                "the HTTP proxy `{proxy}` sent more than {MAX_INTERIM_ANSWERS} interim (1xx) answers and no answer to CONNECT"
                            ),
                            None,
                        ));
                    }
                    buf.drain(..len);
                    skipped += len;
                    continue;
                }
                if (200..300).contains(&code) {
                    return Ok(buf.split_off(len));
                }
                return Err(refusal(code, &reason, target, credentials, proxy));
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => {
                return Err(worded(
                    io::ErrorKind::InvalidData,
                    format!(
                        "`{proxy}` is not an HTTP proxy, or answered CONNECT with a malformed response: {e}"
                    ),
                    None,
                ));
            }
        }
        if skipped + buf.len() >= MAX_RESPONSE_HEAD {
            return Err(worded(
                io::ErrorKind::InvalidData,
                format!(
                    "the HTTP proxy `{proxy}` sent a response head longer than {MAX_RESPONSE_HEAD} bytes (interim 1xx answers included)"
                ),
                None,
            ));
        }
        let want = chunk.len().min(MAX_RESPONSE_HEAD - skipped - buf.len());
        let n = stream
            .read(&mut chunk[..want])
            .await
            .map_err(|e| io_words(e, proxy))?;
        if n == 0 {
            return Err(worded(
                io::ErrorKind::UnexpectedEof,
                format!("the HTTP proxy `{proxy}` closed the connection before answering CONNECT"),
                None,
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn refusal(
    code: u16,
    reason: &str,
    target: &Target,
    credentials: Option<&Credentials>,
    proxy: &str,
) -> io::Error {
    let kind = match code {
        401 | 403 | 407 => io::ErrorKind::PermissionDenied,
        504 => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::ConnectionRefused,
    };
    let hint = match (code, credentials) {
        // tinyproxy answers a CONNECT without valid credentials with 401.
        (401 | 407, None) => {
            ": the proxy requires authentication; give `user=` and `passwordFile=` (or `password=`, `passwordEnv=`)".to_owned()
        }
        (401 | 407, Some(c)) => format!(
            ": authentication failed; the proxy rejected the password of user `{}`",
            c.user
        ),
        _ => String::new(),
    };
    let reason: String = reason
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    worded(
        kind,
        format!("the HTTP proxy `{proxy}` refused CONNECT {target}: {code} {reason}{hint}"),
        None,
    )
}

fn build_httpconnect(d: &Description) -> Result<Box<dyn ClientEndpoint>, ParseError> {
    crate::common::unescaped_proxy(d)?;
    let args = Args::parse(d, HTTPCONNECT_PARAMS)?;
    build(&args, Protocol::HttpConnect, None)
}

endpoints_core::register_client! {
    prefix: "httpconnect",
    summary: "connect through an HTTP proxy's CONNECT method (Basic authentication) reached by any client description",
    params: HTTPCONNECT_PARAMS,
    build: build_httpconnect,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn request_brackets_ipv6_and_carries_basic_auth() {
        let t = Target::Ip("[::1]:443".parse().expect("literal"));
        let c = Credentials {
            user: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(
            request(&t, Some(&c)),
            "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn bytes_after_the_head_are_kept_and_interim_answers_skipped() {
        let (mut client, mut proxy) = tokio::io::duplex(4096);
        let t = Target::Name("example.com".into(), 80);
        let answer = async {
            let mut req = vec![0u8; request(&t, None).len()];
            proxy.read_exact(&mut req).await.expect("request");
            proxy
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\nVia: x\r\n\r\nhello")
                .await
                .expect("answer");
        };
        let (rest, ()) = tokio::join!(handshake(&mut client, &t, None, "test"), answer);
        assert_eq!(rest.expect("tunnel"), b"hello");
    }
}
