//! Tor's control protocol (control-spec.txt), the part `tor:` and `onion:` need: replies and
//! asynchronous events read with bounds, PROTOCOLINFO, SAFECOOKIE, COOKIE and password
//! authentication, commands sent one at a time.
//!
//! A control port is a trust boundary: whatever answers there, a line longer than
//! [`MAX_LINE`], a reply larger than [`MAX_REPLY`] or with more than [`MAX_LINES`] lines, or a
//! line that is not `DDD[ -+]text` is an error naming the limit, never a panic and never an
//! unbounded buffer. No crate fitted: `torut` (the one maintained control-protocol crate)
//! reads lines without a bound and pulls its own error and future types; this module is the
//! small part we use, with its own tests.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use endpoints_core::{ClientEndpoint, Connection};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::sync::{Mutex, broadcast, mpsc, watch};

/// The longest line accepted from the control port, CRLF included.
pub const MAX_LINE: usize = 16 * 1024;
/// The most bytes of one reply (all its lines and data).
pub const MAX_REPLY: usize = 256 * 1024;
/// The most lines of one reply.
pub const MAX_LINES: usize = 1024;

/// One line of a reply: its status code, its text, and the data block a `+` line carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyLine {
    /// The three-digit status.
    pub status: u16,
    /// The text after the status and separator (lossy UTF-8).
    pub text: String,
    /// The data block of a `DDD+` line, dot-unstuffed, lines joined by `\n`.
    pub data: Option<String>,
}

/// A whole reply (the lines up to the one with a space after its status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status of the final line.
    pub status: u16,
    /// Every line, the final one last.
    pub lines: Vec<ReplyLine>,
}

impl Reply {
    /// A 2xx answer.
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// An asynchronous event (650).
    pub fn is_event(&self) -> bool {
        self.status == 650
    }

    /// The value of `KEY=` on any line (`ServiceID=...`), first match.
    pub fn value(&self, key: &str) -> Option<String> {
        self.lines.iter().find_map(|l| {
            if let Some(rest) = l.text.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
                return Some(unquote(rest).unwrap_or_else(|| rest.to_owned()));
            }
            pairs(&l.text)
                .into_iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
        })
    }

    /// The reply in one line, for errors (each line's text joined with `; `, at most 300 bytes).
    pub fn summary(&self) -> String {
        let mut s = format!("{}", self.status);
        for l in &self.lines {
            s.push(' ');
            s.push_str(&l.text);
            if s.len() > 300 {
                let mut cut = 300;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                s.push('…');
                break;
            }
        }
        s.escape_debug().to_string()
    }
}

fn invalid(words: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, words.to_string())
}

/// Reads replies line by line, with the bounds above. Pure: give it lines, it gives replies.
#[derive(Debug, Default)]
pub struct Parser {
    lines: Vec<ReplyLine>,
    size: usize,
    /// In a data block: its line so far.
    data: Option<ReplyLine>,
}

impl Parser {
    /// A parser at the start of a reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// One line (without its line end; a trailing CR is dropped). Returns a reply when the
    /// line ends one. After an error the parser starts afresh.
    pub fn push_line(&mut self, line: &[u8]) -> io::Result<Option<Reply>> {
        let r = self.push(line);
        if r.is_err() {
            *self = Self::default();
        }
        r
    }

    fn push(&mut self, line: &[u8]) -> io::Result<Option<Reply>> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE {
            return Err(invalid(format_args!(
                "a control-port line of more than {MAX_LINE} bytes"
            )));
        }
        self.size += line.len() + 2;
        if self.size > MAX_REPLY {
            return Err(invalid(format_args!(
                "a control-port reply of more than {MAX_REPLY} bytes"
            )));
        }
        if let Some(mut block) = self.data.take() {
            let text = block.data.get_or_insert_with(String::new);
            if line == b"." {
                self.lines.push(block);
                return self.count();
            }
            let line = line.strip_prefix(b".").unwrap_or(line);
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&String::from_utf8_lossy(line));
            self.data = Some(block);
            return Ok(None);
        }
        let (code, rest) = match line {
            [a, b, c, sep, rest @ ..]
                if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() =>
            {
                let status =
                    u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
                ((status, *sep), rest)
            }
            [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
                let status =
                    u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
                ((status, b' '), &[][..])
            }
            _ => {
                return Err(invalid(format_args!(
                    "a control-port line that does not start with a three-digit status: {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(60)])
                )));
            }
        };
        let (status, sep) = code;
        let l = ReplyLine {
            status,
            text: String::from_utf8_lossy(rest).into_owned(),
            data: None,
        };
        match sep {
            b' ' => {
                self.lines.push(l);
                let lines = std::mem::take(&mut self.lines);
                self.size = 0;
                Ok(Some(Reply { status, lines }))
            }
            b'-' => {
                self.lines.push(l);
                self.count()
            }
            b'+' => {
                self.data = Some(l);
                Ok(None)
            }
            other => Err(invalid(format_args!(
                "a control-port line with separator {:?} after its status (expected ` `, `-` or `+`)",
                char::from(other)
            ))),
        }
    }

    fn count(&mut self) -> io::Result<Option<Reply>> {
        if self.lines.len() > MAX_LINES {
            return Err(invalid(format_args!(
                "a control-port reply of more than {MAX_LINES} lines"
            )));
        }
        Ok(None)
    }
}

/// Read one line (up to and without `\n`) into `buf`, at most `max` bytes: `Ok(false)` at end
/// of input. A longer line is an error; nothing beyond `max + 1` bytes is ever buffered.
pub async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<bool> {
    buf.clear();
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            if buf.is_empty() {
                return Ok(false);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the control port closed in the middle of a line",
            ));
        }
        let (used, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let take = if done { used - 1 } else { used };
        if buf.len() + take > max {
            return Err(invalid(format_args!(
                "a control-port line of more than {max} bytes"
            )));
        }
        buf.extend_from_slice(&avail[..take]);
        r.consume(used);
        if done {
            return Ok(true);
        }
    }
}

/// `"..."` with control-spec escapes, to its text; `None` if `s` is not one quoted string.
pub fn unquote(s: &str) -> Option<String> {
    let (v, rest) = quoted(s)?;
    rest.is_empty().then_some(v)
}

/// A quoted string at the start of `s` and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// `KEY=VALUE` pairs of a line, values quoted or not; words without `=` are left out.
pub fn pairs(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let word_end = rest.find([' ', '=']).unwrap_or(rest.len());
        let key = &rest[..word_end];
        rest = &rest[word_end..];
        if let Some(after) = rest.strip_prefix('=') {
            let (value, after) = match quoted(after) {
                Some((v, a)) => (v, a),
                None => {
                    let end = after.find(' ').unwrap_or(after.len());
                    (after[..end].to_owned(), &after[end..])
                }
            };
            out.push((key.to_owned(), value));
            rest = after;
        }
        rest = rest.trim_start();
    }
    out
}

/// A string in the control protocol's quotes.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 1024 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

struct Shared {
    /// The write half and the queue of replies, taken together for one command at a time.
    link: Mutex<(WriteHalf<Connection>, mpsc::Receiver<io::Result<Reply>>)>,
    events: broadcast::Sender<Reply>,
    /// `Some(why)` once the connection has ended.
    closed: watch::Receiver<Option<String>>,
    reader: tokio::task::AbortHandle,
    name: String,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// An authenticated control connection. Clones share it; it closes when the last is dropped
/// (Tor then removes the onion services it added without `Detach`).
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("port", &self.shared.name)
            .finish_non_exhaustive()
    }
}

/// How Tor said we may authenticate (PROTOCOLINFO).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtocolInfo {
    /// `METHODS=` (`NULL`, `HASHEDPASSWORD`, `COOKIE`, `SAFECOOKIE`).
    pub methods: Vec<String>,
    /// `COOKIEFILE=`.
    pub cookie_file: Option<PathBuf>,
    /// Tor's version.
    pub version: Option<String>,
}

impl ProtocolInfo {
    /// From a PROTOCOLINFO reply.
    pub fn parse(reply: &Reply) -> Self {
        let mut info = Self::default();
        for l in &reply.lines {
            if let Some(rest) = l.text.strip_prefix("AUTH ") {
                for (k, v) in pairs(rest) {
                    match k.as_str() {
                        "METHODS" => info.methods = v.split(',').map(str::to_owned).collect(),
                        "COOKIEFILE" => info.cookie_file = Some(PathBuf::from(v)),
                        _ => {}
                    }
                }
            } else if let Some(rest) = l.text.strip_prefix("VERSION ") {
                info.version = pairs(rest)
                    .into_iter()
                    .find(|(k, _)| k == "Tor")
                    .map(|(_, v)| v);
            }
        }
        info
    }

    fn offers(&self, m: &str) -> bool {
        self.methods.iter().any(|x| x == m)
    }
}

const SERVER_KEY: &[u8] = b"Tor safe cookie authentication server-to-controller hash";
const CLIENT_KEY: &[u8] = b"Tor safe cookie authentication controller-to-server hash";

/// Read a 32-byte authentication cookie (reading at most 33 bytes of whatever the file is).
fn read_cookie(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot read Tor's authentication cookie `{}` (named by PROTOCOLINFO): {e}; run as a user that can read it (Debian: the `debian-tor` group) or give `controlPasswordFile=`",
                path.display()
            ),
        )
    })?;
    let mut cookie = Vec::with_capacity(33);
    f.take(33).read_to_end(&mut cookie)?;
    if cookie.len() != 32 {
        return Err(invalid(format_args!(
            "Tor's authentication cookie `{}` is not 32 bytes",
            path.display()
        )));
    }
    Ok(cookie)
}

impl Control {
    /// Connect with `endpoint` (a client description's endpoint: `tcp:127.0.0.1:9051`,
    /// `unix:/run/tor/control`, ...) and authenticate: SAFECOOKIE, else COOKIE (the cookie file
    /// PROTOCOLINFO names), else the password read from `password_file`, else NULL.
    pub async fn connect(
        endpoint: &dyn ClientEndpoint,
        password_file: Option<&Path>,
    ) -> io::Result<Self> {
        let name = endpoint.to_string();
        let conn = endpoint.connect().await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot reach Tor's control port `{name}`: {e} (is Tor running with `ControlPort` set?)"),
            )
        })?;
        let control = Self::start(conn, name);
        control.authenticate(password_file).await?;
        Ok(control)
    }

    /// Run the protocol over an open connection (not yet authenticated).
    pub fn start(conn: Connection, name: String) -> Self {
        let (read, write) = tokio::io::split(conn);
        let (reply_tx, reply_rx) = mpsc::channel(4);
        let (events, _) = broadcast::channel(64);
        let (closed_tx, closed) = watch::channel(None);
        let task = tokio::spawn(read_replies(
            BufReader::new(read),
            reply_tx,
            events.clone(),
            closed_tx,
        ));
        Self {
            shared: Arc::new(Shared {
                link: Mutex::new((write, reply_rx)),
                events,
                closed,
                reader: task.abort_handle(),
                name,
            }),
        }
    }

    /// The control port's description.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Send one command line and wait for its reply (any status).
    pub async fn command(&self, line: &str) -> io::Result<Reply> {
        if line.contains(['\r', '\n']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a control command is one line",
            ));
        }
        let mut link = self.shared.link.lock().await;
        let (write, replies) = &mut *link;
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        write
            .write_all(&bytes)
            .await
            .map_err(|e| self.lost(Some(e)))?;
        match replies.recv().await {
            Some(r) => r,
            None => Err(self.lost(None)),
        }
    }

    /// Send a command; an answer other than 2xx is an error naming `what` and the reply.
    pub async fn ok(&self, line: &str, what: &str) -> io::Result<Reply> {
        let r = self.command(line).await?;
        if r.is_ok() {
            return Ok(r);
        }
        let kind = match r.status {
            515 => io::ErrorKind::PermissionDenied,
            552 => io::ErrorKind::NotFound,
            _ => io::ErrorKind::Other,
        };
        Err(io::Error::new(
            kind,
            format!(
                "Tor's control port `{}` refused {what}: {}",
                self.shared.name,
                r.summary()
            ),
        ))
    }

    fn lost(&self, e: Option<io::Error>) -> io::Error {
        let why = self.closed_reason().or(e.map(|e| e.to_string()));
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!(
                "the control connection to Tor `{}` is lost: {}",
                self.shared.name,
                why.unwrap_or_else(|| "closed".into())
            ),
        )
    }

    /// Why the connection ended, once it has.
    pub fn closed_reason(&self) -> Option<String> {
        self.shared.closed.borrow().clone()
    }

    /// Resolves when the connection ends, with the reason.
    pub async fn closed(&self) -> String {
        let mut rx = self.shared.closed.clone();
        loop {
            if let Some(why) = rx.borrow_and_update().clone() {
                return why;
            }
            if rx.changed().await.is_err() {
                return "closed".into();
            }
        }
    }

    /// Asynchronous events (650 replies) from now on, for the events enabled with SETEVENTS.
    pub fn events(&self) -> broadcast::Receiver<Reply> {
        self.shared.events.subscribe()
    }

    /// PROTOCOLINFO, then the strongest method Tor offers that we can use.
    async fn authenticate(&self, password_file: Option<&Path>) -> io::Result<()> {
        let info = ProtocolInfo::parse(&self.ok("PROTOCOLINFO 1", "PROTOCOLINFO").await?);
        let name = &self.shared.name;
        if let Some(path) = password_file
            && info.offers("HASHEDPASSWORD")
        {
            let text = std::fs::read_to_string(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot read the control password file `{}`: {e}",
                        path.display()
                    ),
                )
            })?;
            let pw = text.strip_suffix('\n').unwrap_or(&text);
            let pw = pw.strip_suffix('\r').unwrap_or(pw);
            return self
                .auth(&format!("AUTHENTICATE {}", quote(pw)), "the password")
                .await;
        }
        if info.offers("SAFECOOKIE") || info.offers("COOKIE") {
            let path = info.cookie_file.clone().ok_or_else(|| {
                invalid(format_args!(
                    "Tor's control port `{name}` offers cookie authentication but names no cookie file"
                ))
            })?;
            let cookie = read_cookie(&path)?;
            if info.offers("SAFECOOKIE") {
                return self.safecookie(&cookie, &path).await;
            }
            return self
                .auth(&format!("AUTHENTICATE {}", hex(&cookie)), "the cookie")
                .await;
        }
        if info.offers("NULL") {
            return self.auth("AUTHENTICATE", "no authentication").await;
        }
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "Tor's control port `{name}` asks for {} and none was given: give `controlPasswordFile=` (a file holding the password) or enable `CookieAuthentication 1`",
                info.methods.join(", ")
            ),
        ))
    }

    async fn auth(&self, line: &str, what: &str) -> io::Result<()> {
        let r = self.command(line).await?;
        if r.is_ok() {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "Tor's control port `{}` refused {what}: {}",
                self.shared.name,
                r.summary()
            ),
        ))
    }

    async fn safecookie(&self, cookie: &[u8], path: &Path) -> io::Result<()> {
        use ring::hmac;
        use ring::rand::{SecureRandom, SystemRandom};
        let mut nonce = [0u8; 32];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| io::Error::other("no random numbers for the SAFECOOKIE nonce"))?;
        let r = self
            .ok(
                &format!("AUTHCHALLENGE SAFECOOKIE {}", hex(&nonce)),
                "AUTHCHALLENGE",
            )
            .await?;
        let server_hash = r.value("SERVERHASH").and_then(|h| unhex(&h));
        let server_nonce = r.value("SERVERNONCE").and_then(|h| unhex(&h));
        let (Some(server_hash), Some(server_nonce)) = (server_hash, server_nonce) else {
            return Err(invalid(format_args!(
                "Tor's AUTHCHALLENGE answer lacks SERVERHASH or SERVERNONCE: {}",
                r.summary()
            )));
        };
        let mut msg = cookie.to_vec();
        msg.extend_from_slice(&nonce);
        msg.extend_from_slice(&server_nonce);
        let server_key = hmac::Key::new(hmac::HMAC_SHA256, SERVER_KEY);
        if hmac::verify(&server_key, &msg, &server_hash).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "Tor's control port `{}` does not know the cookie in `{}` (SAFECOOKIE: its server hash does not match): the file is not this Tor's cookie (another Tor? a stale file?)",
                    self.shared.name,
                    path.display()
                ),
            ));
        }
        let client = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, CLIENT_KEY), &msg);
        self.auth(
            &format!("AUTHENTICATE {}", hex(client.as_ref())),
            "the SAFECOOKIE answer",
        )
        .await
    }
}

async fn read_replies(
    mut read: BufReader<ReadHalf<Connection>>,
    replies: mpsc::Sender<io::Result<Reply>>,
    events: broadcast::Sender<Reply>,
    closed: watch::Sender<Option<String>>,
) {
    let mut parser = Parser::new();
    let mut line = Vec::new();
    let why = loop {
        match read_line(&mut read, &mut line, MAX_LINE).await {
            Ok(false) => break "Tor closed the control connection".to_owned(),
            Err(e) => {
                let _ = replies.send(Err(invalid(&e))).await;
                break e.to_string();
            }
            Ok(true) => {}
        }
        match parser.push_line(&line) {
            Ok(None) => {}
            Ok(Some(r)) if r.is_event() => {
                let _ = events.send(r);
            }
            Ok(Some(r)) => {
                if replies.send(Ok(r)).await.is_err() {
                    break "closed".to_owned();
                }
            }
            Err(e) => {
                let _ = replies.send(Err(invalid(&e))).await;
                break e.to_string();
            }
        }
    };
    tracing::debug!(reason = %why, "control connection ended");
    let _ = closed.send(Some(why));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed(p: &mut Parser, text: &str) -> Vec<io::Result<Option<Reply>>> {
        text.split("\r\n")
            .map(|l| p.push_line(l.as_bytes()))
            .collect()
    }

    #[test]
    fn protocolinfo_and_pairs() {
        let mut p = Parser::new();
        let out = feed(
            &mut p,
            "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/var/lib/tor/a \\\"b\\\"\"\r\n250-VERSION Tor=\"0.4.9.11\"\r\n250 OK",
        );
        let r = out
            .into_iter()
            .last()
            .expect("lines")
            .expect("ok")
            .expect("reply");
        let info = ProtocolInfo::parse(&r);
        assert_eq!(info.methods, ["COOKIE", "SAFECOOKIE"]);
        assert_eq!(
            info.cookie_file.as_deref(),
            Some(Path::new("/var/lib/tor/a \"b\""))
        );
        assert_eq!(info.version.as_deref(), Some("0.4.9.11"));
    }

    #[test]
    fn data_blocks_are_unstuffed() {
        let mut p = Parser::new();
        let out = feed(&mut p, "250+x=\r\n..a\r\nb\r\n.\r\n250 OK");
        let r = out
            .into_iter()
            .last()
            .expect("lines")
            .expect("ok")
            .expect("reply");
        assert_eq!(r.lines[0].data.as_deref(), Some(".a\nb"));
        assert_eq!(r.value("x").as_deref(), Some(""));
    }

    #[test]
    fn add_onion_values() {
        let mut p = Parser::new();
        let out = feed(
            &mut p,
            "250-ServiceID=abc\r\n250-PrivateKey=ED25519-V3:AAAA\r\n250 OK",
        );
        let r = out
            .into_iter()
            .last()
            .expect("lines")
            .expect("ok")
            .expect("reply");
        assert_eq!(r.value("ServiceID").as_deref(), Some("abc"));
        assert_eq!(r.value("PrivateKey").as_deref(), Some("ED25519-V3:AAAA"));
    }

    #[test]
    fn bounds() {
        let mut p = Parser::new();
        assert!(p.push_line(&vec![b'2'; MAX_LINE + 1]).is_err());
        let mut p = Parser::new();
        let mut failed = false;
        for _ in 0..=MAX_LINES {
            if p.push_line(b"250-x").is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "more than MAX_LINES lines is an error");
        let mut p = Parser::new();
        assert!(p.push_line(b"250+data").expect("start").is_none());
        let long = vec![b'a'; MAX_LINE];
        let mut failed = false;
        for _ in 0..(MAX_REPLY / MAX_LINE + 2) {
            if p.push_line(&long).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "a data block over MAX_REPLY is an error");
        assert!(Parser::new().push_line(b"25").is_err());
        assert!(Parser::new().push_line(b"250x").is_err());
        assert!(Parser::new().push_line("2٣0 OK".as_bytes()).is_err());
    }

    #[tokio::test]
    async fn read_line_is_bounded() {
        let input = [b'x'; 100];
        let mut r = BufReader::with_capacity(7, &input[..]);
        let mut buf = Vec::new();
        let e = read_line(&mut r, &mut buf, 50).await.expect_err("too long");
        assert!(e.to_string().contains("more than 50 bytes"), "{e}");
        assert!(buf.len() <= 50);
        let mut r = BufReader::new(&b"ab\r\ncd"[..]);
        assert!(read_line(&mut r, &mut buf, 50).await.expect("line"));
        assert_eq!(buf, b"ab\r");
        assert!(read_line(&mut r, &mut buf, 50).await.is_err(), "cut line");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]
        /// Any bytes, cut into lines anywhere: no panic, and what the parser holds stays
        /// within MAX_REPLY (plus the current line).
        #[test]
        fn any_bytes_never_panic(lines in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                "(250|650|515|552)[-+ ][ -~]{0,30}".prop_map(String::into_bytes),
                Just(b".".to_vec()),
            ],
            0..200,
        )) {
            let mut p = Parser::new();
            for l in &lines {
                let _ = p.push_line(l);
                prop_assert!(p.size <= MAX_REPLY + MAX_LINE + 2);
                prop_assert!(p.lines.len() <= MAX_LINES + 1);
            }
            for l in &lines {
                let text = String::from_utf8_lossy(l);
                let _ = pairs(&text);
                let _ = unquote(&text);
                let _ = unhex(&text);
            }
        }
    }
}
