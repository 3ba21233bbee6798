//! `stderr=log`: the child's stderr read line by line, logged at WARN, bounded.
//!
//! Bounds: a line is cut at [`MAX_LINE`] bytes (the rest of it is counted, not kept); at most
//! [`MAX_LOGGED`] lines are logged per child, then one line says that the rest is not, and a
//! last one counts them when stderr ends. The pipe is always drained, so a child that
//! writes a lot never blocks on it. The last [`TAIL_LINES`] lines are kept for the error of a
//! failed exit.

use std::collections::VecDeque;

use tokio::io::AsyncReadExt;
use tokio::process::ChildStderr;
use tokio::task::JoinHandle;

/// The longest line logged or kept, in bytes.
pub const MAX_LINE: usize = 2048;
/// How many lines of one child are logged.
pub const MAX_LOGGED: usize = 200;
/// How many of the last lines a failed exit's error shows.
pub const TAIL_LINES: usize = 5;

/// The last lines of a child's stderr.
pub(crate) type Tail = Vec<String>;

/// Read `stderr` to its end in a task; the task's result is the last lines.
pub(crate) fn spawn_reader(stderr: ChildStderr, program: String, pid: u32) -> JoinHandle<Tail> {
    tokio::spawn(read_lines(stderr, program, pid))
}

async fn read_lines(mut stderr: ChildStderr, program: String, pid: u32) -> Tail {
    let mut lines = Lines::new(program, pid);
    let mut buf = vec![0u8; 8192];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => lines.feed(&buf[..n]),
        }
    }
    lines.finish()
}

/// The line splitter and its bounds.
struct Lines {
    program: String,
    pid: u32,
    current: Vec<u8>,
    /// Bytes of the current line beyond [`MAX_LINE`], dropped.
    cut: usize,
    logged: usize,
    unlogged: usize,
    tail: VecDeque<String>,
}

impl Lines {
    fn new(program: String, pid: u32) -> Self {
        Self {
            program,
            pid,
            current: Vec::new(),
            cut: 0,
            logged: 0,
            unlogged: 0,
            tail: VecDeque::with_capacity(TAIL_LINES),
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (line, rest, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            let room = MAX_LINE.saturating_sub(self.current.len());
            let keep = line.len().min(room);
            self.current.extend_from_slice(&line[..keep]);
            self.cut += line.len() - keep;
            if ended {
                self.line_done();
            }
            bytes = rest;
        }
    }

    fn line_done(&mut self) {
        let mut text = printable(&self.current);
        if self.cut > 0 {
            text.push_str(&format!(" [{} more bytes cut]", self.cut));
        }
        self.current.clear();
        self.cut = 0;
        if self.logged < MAX_LOGGED {
            self.logged += 1;
            tracing::warn!(program = %self.program, pid = self.pid, "{text}");
            if self.logged == MAX_LOGGED {
                tracing::warn!(
                    program = %self.program,
                    pid = self.pid,
                    "{MAX_LOGGED} lines of stderr logged; the rest is not (it is still read)"
                );
            }
        } else {
            self.unlogged += 1;
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(text);
    }

    fn finish(mut self) -> Tail {
        if !self.current.is_empty() || self.cut > 0 {
            self.line_done();
        }
        if self.unlogged > 0 {
            tracing::warn!(
                program = %self.program,
                pid = self.pid,
                "stderr ended; {} more lines were not logged",
                self.unlogged
            );
        }
        self.tail.into()
    }
}

/// The line as text that cannot forge log lines: invalid UTF-8 replaced, control characters
/// (but tab) escaped, a trailing `\r` dropped.
fn printable(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let mut out = String::with_capacity(bytes.len());
    for c in String::from_utf8_lossy(bytes).chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_counted_and_kept_last() {
        let mut l = Lines::new("p".into(), 1);
        l.feed(b"one\ntw");
        l.feed(b"o\r\n");
        let long = vec![b'x'; MAX_LINE + 10];
        l.feed(&long);
        l.feed(b"\n\x1b[31mred\n");
        for i in 0..(MAX_LOGGED + 7) {
            l.feed(format!("line {i}\n").as_bytes());
        }
        l.feed(b"no newline at the end");
        assert_eq!(l.logged, MAX_LOGGED);
        // 4 lines first, then 207 numbered ones (the unterminated last one is not a line yet).
        assert_eq!(l.unlogged, 211 - MAX_LOGGED);
        let tail = l.finish();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(
            tail.last().map(String::as_str),
            Some("no newline at the end")
        );
        assert_eq!(tail[0], format!("line {}", MAX_LOGGED + 3));
    }

    #[test]
    fn printable_escapes_what_could_forge_a_log_line() {
        assert_eq!(printable(b"a\x1b[0mb\tc\r"), "a\\u{1b}[0mb\tc");
        assert_eq!(printable(b"\xff ok"), "\u{fffd} ok");
        let mut l = Lines::new("p".into(), 1);
        l.feed(&vec![b'y'; MAX_LINE + 3]);
        l.feed(b"\n");
        let t = l.finish();
        assert!(
            t[0].ends_with(" [3 more bytes cut]"),
            "{}",
            &t[0][MAX_LINE..]
        );
        assert_eq!(t[0].len(), MAX_LINE + " [3 more bytes cut]".len());
    }
}
