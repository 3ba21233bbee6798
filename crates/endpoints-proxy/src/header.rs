//! [`ProxyHeader`] and the strict, incremental parser.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use endpoints_core::Address;

/// The v2 signature.
pub const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// The longest v1 line, CRLF included (the spec's 107 bytes).
pub const V1_MAX: usize = 107;
/// Default cap on a v2 header (16 fixed bytes plus the declared length), as go-proxyproto and
/// nginx use.
pub const DEFAULT_V2_MAX: usize = 4096;

/// TLV type: ALPN.
pub const TLV_ALPN: u8 = 0x01;
/// TLV type: authority (usually the SNI).
pub const TLV_AUTHORITY: u8 = 0x02;
/// TLV type: CRC32C of the header.
pub const TLV_CRC32C: u8 = 0x03;
/// TLV type: padding.
pub const TLV_NOOP: u8 = 0x04;
/// TLV type: unique connection id.
pub const TLV_UNIQUE_ID: u8 = 0x05;
/// TLV type: SSL information (with sub-TLVs).
pub const TLV_SSL: u8 = 0x20;

/// LOCAL (health checks: use the real addresses) or PROXY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// The connection was made by the proxy itself.
    Local,
    /// The connection is relayed for the client named in the header.
    Proxy,
}

/// One v2 type-length-value field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    /// Its type.
    pub kind: u8,
    /// Its value.
    pub value: Vec<u8>,
}

/// A received PROXY header, found in the extensions of every connection a `haproxy:`
/// listener yields (`conn.extensions().get::<ProxyHeader>()`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyHeader {
    /// 1 or 2.
    pub version: u8,
    /// LOCAL or PROXY (v1 is always PROXY).
    pub command: Command,
    /// The client, when the header names one (not for LOCAL, UNKNOWN or UNSPEC).
    pub source: Option<Address>,
    /// The address the client connected to, when the header names one.
    pub destination: Option<Address>,
    /// v2 TLVs, in order (CRC32C already checked).
    pub tlvs: Vec<Tlv>,
    /// The header exactly as received.
    pub raw: Vec<u8>,
}

impl ProxyHeader {
    /// The value of the first TLV of type `kind`.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| t.value.as_slice())
    }

    /// The ALPN TLV.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tlv(TLV_ALPN)
    }

    /// The authority TLV, as text.
    pub fn authority(&self) -> Option<&str> {
        self.tlv(TLV_AUTHORITY)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The unique-id TLV.
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.tlv(TLV_UNIQUE_ID)
    }

    /// The SSL TLV: whether the client used TLS, and the TLS version sub-TLV (0x21).
    pub fn ssl(&self) -> Option<SslInfo> {
        let v = self.tlv(TLV_SSL)?;
        let (client, verify) = (
            *v.first()?,
            u32::from_be_bytes(v.get(1..5)?.try_into().ok()?),
        );
        let mut version = None;
        let mut rest = v.get(5..)?;
        while rest.len() >= 3 {
            let (kind, len) = (rest[0], u16::from_be_bytes([rest[1], rest[2]]) as usize);
            let value = rest.get(3..3 + len)?;
            if kind == 0x21 {
                version = std::str::from_utf8(value).ok().map(str::to_owned);
            }
            rest = &rest[3 + len..];
        }
        Some(SslInfo {
            client,
            verify,
            version,
        })
    }
}

/// The SSL TLV of a v2 header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SslInfo {
    /// Bit flags: 0x01 the client used TLS, 0x02 it sent a certificate on this connection,
    /// 0x04 in this session.
    pub client: u8,
    /// 0 when the client certificate was verified.
    pub verify: u32,
    /// The TLS version, such as `TLSv1.3`.
    pub version: Option<String>,
}

/// Why a header was refused. Each closes the connection at once.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The bytes are not a PROXY header (no signature, not `PROXY `).
    NotProxy,
    /// v1: no CRLF within 107 bytes; v2: declared length above the cap.
    TooLong {
        /// The limit.
        limit: usize,
    },
    /// A malformed header (the text says how).
    Invalid(String),
    /// The v2 CRC32C TLV does not match.
    BadChecksum,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotProxy => f.write_str("not a PROXY protocol header"),
            Self::TooLong { limit } => write!(f, "PROXY header longer than {limit} bytes"),
            Self::Invalid(why) => write!(f, "invalid PROXY header: {why}"),
            Self::BadChecksum => f.write_str("PROXY v2 header CRC32C mismatch"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// What the bytes so far amount to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A prefix of a valid header: read more.
    NeedMore,
    /// A complete header, and how many bytes of the input it took (the rest belongs to the
    /// application).
    Done(ProxyHeader, usize),
}

/// Decide what `buf` (the first bytes of a connection) is: incomplete, a complete valid header,
/// or an error. Errors come as soon as the bytes allow: a wrong first byte, a v2 length above
/// `v2_max` as soon as the 16 fixed bytes are in, a v1 line without CRLF at 107 bytes.
pub fn parse(buf: &[u8], v2_max: usize) -> Result<Progress, HeaderError> {
    match buf.first() {
        None => Ok(Progress::NeedMore),
        Some(b'P') => parse_v1(buf),
        Some(0x0D) => parse_v2(buf, v2_max),
        Some(_) => Err(HeaderError::NotProxy),
    }
}

fn invalid(why: impl fmt::Display) -> HeaderError {
    HeaderError::Invalid(why.to_string())
}

fn parse_v1(buf: &[u8]) -> Result<Progress, HeaderError> {
    const PREFIX: &[u8] = b"PROXY ";
    let n = buf.len().min(PREFIX.len());
    if buf[..n] != PREFIX[..n] {
        return Err(HeaderError::NotProxy);
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        // A lone CR or LF is never a line ending.
        if window
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' || (b == b'\r' && i + 1 < window.len()))
        {
            return Err(invalid("a lone CR or LF in the line"));
        }
        if buf.len() >= V1_MAX {
            return Err(HeaderError::TooLong { limit: V1_MAX });
        }
        return Ok(Progress::NeedMore);
    };
    let line = &buf[..end + 2];
    if line[..end].iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err(invalid("a lone CR or LF in the line"));
    }
    let text = std::str::from_utf8(line).map_err(|_| invalid("not ASCII"))?;
    let unknown = text.starts_with("PROXY UNKNOWN");
    if !unknown && text[..end].split(' ').any(str::is_empty) {
        return Err(invalid("empty field (double space)"));
    }
    let h = ppp::v1::Header::try_from(text).map_err(invalid)?;
    if h.header.len() != line.len() {
        return Err(invalid("extra data in the line"));
    }
    let (source, destination) = match h.addresses {
        ppp::v1::Addresses::Unknown => (None, None),
        ppp::v1::Addresses::Tcp4(a) => (
            Some(Address::Ip(SocketAddr::from((
                a.source_address,
                a.source_port,
            )))),
            Some(Address::Ip(SocketAddr::from((
                a.destination_address,
                a.destination_port,
            )))),
        ),
        ppp::v1::Addresses::Tcp6(a) => (
            Some(Address::Ip(SocketAddr::from((
                a.source_address,
                a.source_port,
            )))),
            Some(Address::Ip(SocketAddr::from((
                a.destination_address,
                a.destination_port,
            )))),
        ),
    };
    // ppp ignores what follows UNKNOWN; the spec allows anything up to the CRLF, so do we.
    if matches!(
        h.addresses,
        ppp::v1::Addresses::Tcp4(_) | ppp::v1::Addresses::Tcp6(_)
    ) {
        let fields: Vec<&str> = text[..end].split(' ').collect();
        if fields.len() != 6 {
            return Err(invalid("extra fields after the ports"));
        }
        // Rust's integer parsing takes a sign (`+1`); the spec's ports are digits only.
        if fields[4..]
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid("a port that is not plain decimal digits"));
        }
    }
    let header = ProxyHeader {
        version: 1,
        command: Command::Proxy,
        source,
        destination,
        tlvs: Vec::new(),
        raw: line.to_vec(),
    };
    Ok(Progress::Done(header, line.len()))
}

fn parse_v2(buf: &[u8], v2_max: usize) -> Result<Progress, HeaderError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Err(HeaderError::NotProxy);
    }
    if buf.len() < 16 {
        return Ok(Progress::NeedMore);
    }
    if buf[12] >> 4 != 2 {
        return Err(invalid(format_args!(
            "version {} (only 2 is defined)",
            buf[12] >> 4
        )));
    }
    if buf[12] & 0x0F > 1 {
        return Err(invalid(format_args!("command {}", buf[12] & 0x0F)));
    }
    if buf[13] >> 4 > 3 || buf[13] & 0x0F > 2 {
        return Err(invalid(format_args!(
            "family/transport byte {:#04x}",
            buf[13]
        )));
    }
    let total = 16 + u16::from_be_bytes([buf[14], buf[15]]) as usize;
    if total > v2_max {
        return Err(HeaderError::TooLong { limit: v2_max });
    }
    if buf.len() < total {
        return Ok(Progress::NeedMore);
    }
    let bytes = &buf[..total];
    let h = ppp::v2::Header::try_from(bytes).map_err(invalid)?;
    // Our own walk, for every command and family: the TLVs of LOCAL and UNSPEC headers are
    // kept and checked too (ppp yields none for UNSPEC). An UNSPEC family's block has no
    // defined layout: the spec says to ignore it, and senders fill it with addresses (Twisted's
    // vectors do). So there, a block that is a well-formed TLV sequence is kept and checked
    // (CRC32C, unique id), and any other block is address information, ignored.
    let tlvs = match tlvs_of(bytes) {
        Err(HeaderError::Invalid(_)) if buf[13] >> 4 == 0 => Vec::new(),
        other => other?,
    };
    if let Some(crc) = tlvs.iter().find(|t| t.kind == TLV_CRC32C) {
        check_crc(bytes, &crc.value)?;
    }
    let local = h.command == ppp::v2::Command::Local;
    // LOCAL, and UNSPEC family or transport: the addresses are not to be used.
    let unspecified = buf[13] >> 4 == 0 || buf[13] & 0x0F == 0;
    let ip = |source: SocketAddr, destination: SocketAddr| {
        (Some(Address::Ip(source)), Some(Address::Ip(destination)))
    };
    let (source, destination) = match (local || unspecified, h.addresses) {
        (true, _) | (_, ppp::v2::Addresses::Unspecified) => (None, None),
        (false, ppp::v2::Addresses::IPv4(a)) => ip(
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        ),
        (false, ppp::v2::Addresses::IPv6(a)) => ip(
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        ),
        (false, ppp::v2::Addresses::Unix(u)) => (
            Some(unix_address(&u.source)),
            Some(unix_address(&u.destination)),
        ),
    };
    let header = ProxyHeader {
        version: 2,
        command: if local {
            Command::Local
        } else {
            Command::Proxy
        },
        source,
        destination,
        tlvs,
        raw: bytes.to_vec(),
    };
    Ok(Progress::Done(header, total))
}

/// The longest unique-id TLV the spec allows.
const UNIQUE_ID_MAX: usize = 128;

/// The TLVs after the address block of a complete v2 header.
fn tlvs_of(header: &[u8]) -> Result<Vec<Tlv>, HeaderError> {
    let start = 16 + address_len(header[13] >> 4, header.len() - 16);
    let mut rest = &header[start..];
    let mut tlvs = Vec::new();
    while !rest.is_empty() {
        let Some(&[kind, hi, lo]) = rest.get(..3) else {
            return Err(invalid("a truncated TLV at the end of the header"));
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let value = rest
            .get(3..3 + len)
            .ok_or_else(|| invalid(format_args!("TLV {kind:#04x} runs past the header")))?;
        if kind == TLV_UNIQUE_ID && len > UNIQUE_ID_MAX {
            return Err(invalid(format_args!(
                "unique id of {len} bytes (at most {UNIQUE_ID_MAX})"
            )));
        }
        tlvs.push(Tlv {
            kind,
            value: value.to_vec(),
        });
        rest = &rest[3 + len..];
    }
    Ok(tlvs)
}

/// A 108-byte unix path field: trailing NULs stripped; a leading NUL is an abstract name.
fn unix_address(raw: &[u8; 108]) -> Address {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let bytes = &raw[..end];
    match bytes.split_first() {
        None => Address::Unnamed,
        Some((0, name)) => Address::AbstractUnix(name.to_vec()),
        Some(_) => {
            use std::os::unix::ffi::OsStrExt;
            Address::Unix(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
        }
    }
}

/// The CRC32C TLV holds the checksum of the whole header with that value zeroed.
fn check_crc(header: &[u8], value: &[u8]) -> Result<(), HeaderError> {
    let want: [u8; 4] = value
        .try_into()
        .map_err(|_| invalid("CRC32C TLV is not 4 bytes"))?;
    let mut copy = header.to_vec();
    // Find the CRC TLV's value in the copy and zero it.
    let mut off = 16 + address_len(header[13] >> 4, header.len() - 16);
    while off + 3 <= copy.len() {
        let (kind, len) = (
            copy[off],
            u16::from_be_bytes([copy[off + 1], copy[off + 2]]) as usize,
        );
        if kind == TLV_CRC32C && len == 4 && off + 7 <= copy.len() {
            copy[off + 3..off + 7].fill(0);
            break;
        }
        off += 3 + len;
    }
    if crc32c(&copy).to_be_bytes() == want {
        Ok(())
    } else {
        Err(HeaderError::BadChecksum)
    }
}

fn address_len(family: u8, available: usize) -> usize {
    let n = match family {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    };
    n.min(available)
}

/// CRC-32C (Castagnoli), as RFC 4960 appendix B.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> (ProxyHeader, usize) {
        match parse(buf, DEFAULT_V2_MAX) {
            Ok(Progress::Done(h, n)) => (h, n),
            other => panic!("{buf:?}: {other:?}"),
        }
    }

    #[test]
    fn crc32c_known_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn v1_complete_and_split() {
        let line = b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\nhello";
        let (h, n) = done(line);
        assert_eq!(n, line.len() - 5);
        assert_eq!(
            h.source,
            Some(Address::Ip("1.2.3.4:1111".parse().expect("addr")))
        );
        for cut in 0..n {
            assert_eq!(
                parse(&line[..cut], DEFAULT_V2_MAX),
                Ok(Progress::NeedMore),
                "cut at {cut}"
            );
        }
        assert_eq!(done(b"PROXY UNKNOWN\r\n").0.source, None);
        assert_eq!(done(b"PROXY UNKNOWN anything  at all\r\n").0.source, None);
    }

    #[test]
    fn v1_strictness() {
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222 extra\r\n"[..],
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1111 2222\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 70000\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01111 2222\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",
            b"GET / HTTP/1.1\r\n",
            b"\x16\x03\x01\x00",
        ] {
            assert!(
                parse(bad, DEFAULT_V2_MAX).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b'P', b'R', b'O', b'X', b'Y', b' ']
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'A', 120))
            .collect::<Vec<u8>>();
        assert_eq!(
            parse(&long, DEFAULT_V2_MAX),
            Err(HeaderError::TooLong { limit: V1_MAX })
        );
        // A buffer ending in CR is incomplete, not an error (ppp < 2.3 panicked here).
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", DEFAULT_V2_MAX),
            Ok(Progress::NeedMore)
        );
    }

    #[test]
    fn v2_cap_is_checked_after_16_bytes() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x21, 0x11, 0xFF, 0xFF]);
        assert_eq!(
            parse(&h, DEFAULT_V2_MAX),
            Err(HeaderError::TooLong {
                limit: DEFAULT_V2_MAX
            })
        );
        // Too short for its family.
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x21, 0x12, 0x00, 0x00]);
        assert!(parse(&h, DEFAULT_V2_MAX).is_err());
    }

    #[test]
    fn v1_signed_ports_are_refused() {
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n",
            b"PROXY TCP6 ::1 ::2 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 -0 2\r\n",
        ] {
            assert!(
                parse(bad, DEFAULT_V2_MAX).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// A v2 header with `command_family` (bytes 12-13), `addresses`, then a unique id and a
    /// CRC32C TLV (correct, or off by one bit).
    fn v2_with_tlvs(command: u8, family: u8, addresses: &[u8], good_crc: bool) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        let len = addresses.len() + (3 + 4) + (3 + 7);
        h.extend([command, family]);
        h.extend((len as u16).to_be_bytes());
        h.extend(addresses);
        h.extend([TLV_UNIQUE_ID, 0, 7]);
        h.extend(b"conn-42");
        h.extend([TLV_CRC32C, 0, 4, 0, 0, 0, 0]);
        let crc = crc32c(&h) ^ u32::from(!good_crc);
        let n = h.len();
        h[n - 4..].copy_from_slice(&crc.to_be_bytes());
        h
    }

    #[test]
    fn v2_local_and_unspec_keep_and_check_their_tlvs() {
        let v4 = [127, 0, 0, 1, 127, 0, 0, 2, 0x04, 0xD2, 0x00, 0x50];
        for (command, family, addresses) in [
            (0x20, 0x11, &v4[..]), // LOCAL, TCP over IPv4
            (0x21, 0x00, &[][..]), // PROXY, UNSPEC
            (0x20, 0x00, &[][..]), // LOCAL, UNSPEC
        ] {
            let what = format!("command {command:#x} family {family:#x}");
            let h = v2_with_tlvs(command, family, addresses, true);
            let (parsed, n) = done(&h);
            assert_eq!(n, h.len(), "{what}");
            assert_eq!(
                (&parsed.source, &parsed.destination),
                (&None, &None),
                "{what}"
            );
            assert_eq!(parsed.unique_id(), Some(&b"conn-42"[..]), "{what}");
            assert!(parsed.tlv(TLV_CRC32C).is_some(), "{what}");
            let bad = v2_with_tlvs(command, family, addresses, false);
            assert_eq!(
                parse(&bad, DEFAULT_V2_MAX),
                Err(HeaderError::BadChecksum),
                "{what}"
            );
        }
    }

    #[test]
    fn v2_unix_paths_are_escaped_when_displayed() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x21, 0x31, 0, 216]);
        let mut src = [0u8; 108];
        let path = b"/a\nERROR forged line\x1b";
        src[..path.len()].copy_from_slice(path);
        h.extend(src);
        h.extend([0u8; 108]);
        let (parsed, _) = done(&h);
        let shown = parsed.source.expect("a unix source").to_string();
        assert_eq!(shown, r"/a\nERROR forged line\u{1b}");
        assert!(!shown.contains('\n') && !shown.contains('\x1b'));
    }

    #[test]
    fn v2_unique_id_longer_than_128_bytes_is_refused() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x21, 0x11]);
        h.extend((12u16 + 3 + 129).to_be_bytes());
        h.extend([127, 0, 0, 1, 127, 0, 0, 2, 0, 1, 0, 2]);
        h.extend([TLV_UNIQUE_ID, 0, 129]);
        h.extend([b'u'; 129]);
        assert!(parse(&h, DEFAULT_V2_MAX).is_err());
    }

    #[test]
    fn v2_crc32c_checked() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x21, 0x11, 0x00, 12 + 7]);
        h.extend([127, 0, 0, 1, 127, 0, 0, 2, 0x04, 0xD2, 0x00, 0x50]);
        h.extend([TLV_CRC32C, 0x00, 0x04, 0, 0, 0, 0]);
        let crc = crc32c(&h);
        let n = h.len();
        h[n - 4..].copy_from_slice(&crc.to_be_bytes());
        let (parsed, _) = done(&h);
        assert_eq!(
            parsed.source,
            Some(Address::Ip("127.0.0.1:1234".parse().expect("addr")))
        );
        h[n - 1] ^= 1;
        assert_eq!(parse(&h, DEFAULT_V2_MAX), Err(HeaderError::BadChecksum));
    }
}
