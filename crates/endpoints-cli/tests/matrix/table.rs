//! The matrix's table: for each registered stream type, how to make a server description and
//! a client description that meet on loopback (and what they need: a PKI, a SOCKS5 or HTTP
//! proxy, socket activation), and which cells cannot keep a guarantee (with the reason) or
//! fail today because of a known defect (with the issue item that fixes it).
//!
//! A new type joins by adding one [`Row`]; `tidy::every_registered_type_has_a_row` fails
//! until it does (or until [`NOT_IN_MATRIX`] says why it cannot).

use endpoints::escape;
use endpoints::registry::Side;

use crate::fixture::{Fixture, port_of, unix_path_of};

/// How the two ends are driven.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// Both ends in this process, through the library (`endpoints::listen`/`connect`).
    Library,
    /// `endpoints connect CLIENT` to `endpoints listen SERVER`.
    Command,
    /// `endpoints connect CLIENT` to `endpoints relay SERVER tcp:...`, on to a plain
    /// `endpoints listen tcp:...`: the pair on the relay's listening side.
    RelayListening,
    /// `endpoints connect tcp:...` to `endpoints relay tcp:... CLIENT`, on to
    /// `endpoints listen SERVER`: the pair on the relay's connecting side.
    RelayConnecting,
}

pub(crate) const MODES: &[Mode] = &[
    Mode::Library,
    Mode::Command,
    Mode::RelayListening,
    Mode::RelayConnecting,
];

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Library => "library",
            Mode::Command => "command",
            Mode::RelayListening => "relay (listening side)",
            Mode::RelayConnecting => "relay (connecting side)",
        }
    }
}

/// What the two ends do. "Server" is the side that listens (or the program `exec:` runs),
/// "client" the side that connects.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Scenario {
    /// The client sends [`SIZE`] bytes and ends; the server's input is at its end from the
    /// start (it sends nothing): every byte arrives, both ends finish cleanly.
    Upload,
    /// The server sends [`SIZE`] bytes; the client's input is at its end from the start.
    Download,
    /// The server echoes; the client sends [`SIZE`] bytes and gets them back.
    Echo,
    /// Half-close, client first: the client sends a request and ends its side; the server
    /// reads it to its end, then answers; the answer reaches the client.
    HalfCloseClientFirst,
    /// Half-close, server first: the server sends a greeting and ends its side; the client
    /// reads it to its end, then answers; the answer reaches the server.
    HalfCloseServerFirst,
    /// The client uploads; the server end goes away abruptly after [`RESET_AFTER`] bytes
    /// (a reset, or a killed process): the client's side fails (an error, a non-zero exit),
    /// never a clean end; a relay in between warns and resets.
    ResetDuringUpload,
    /// The server sends; the client end goes away abruptly after [`RESET_AFTER`] bytes.
    ResetDuringDownload,
    /// The server sends [`RESET_AFTER`] bytes, is idle for [`IDLE`], then sends the rest;
    /// nothing ends the quiet connection by itself: every byte arrives, cleanly.
    IdlePeer,
    /// The server sends [`RESET_AFTER`] bytes, then stops (SIGSTOP; in the library it stops
    /// reading and writing) without closing; the client's input is at its end. Where the
    /// pair checks that its peer is alive (`ws:` with `ping=`), the client's side ends
    /// loudly once the check fails, never cleanly; a relay in between says so and resets.
    StalledPeer,
}

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario::Upload,
    Scenario::Download,
    Scenario::Echo,
    Scenario::HalfCloseClientFirst,
    Scenario::HalfCloseServerFirst,
    Scenario::ResetDuringUpload,
    Scenario::ResetDuringDownload,
    Scenario::IdlePeer,
    Scenario::StalledPeer,
];

impl Scenario {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Upload => "upload",
            Scenario::Download => "download",
            Scenario::Echo => "echo",
            Scenario::HalfCloseClientFirst => "half-close, client first",
            Scenario::HalfCloseServerFirst => "half-close, server first",
            Scenario::ResetDuringUpload => "reset during upload",
            Scenario::ResetDuringDownload => "reset during download",
            Scenario::IdlePeer => "idle peer",
            Scenario::StalledPeer => "stalled peer",
        }
    }

    pub(crate) fn short(self) -> &'static str {
        match self {
            Scenario::Upload => "up",
            Scenario::Download => "down",
            Scenario::Echo => "echo",
            Scenario::HalfCloseClientFirst => "hc-c",
            Scenario::HalfCloseServerFirst => "hc-s",
            Scenario::ResetDuringUpload => "rst-up",
            Scenario::ResetDuringDownload => "rst-down",
            Scenario::IdlePeer => "idle",
            Scenario::StalledPeer => "stalled",
        }
    }
}

/// The transfer size: bigger than every buffer on the way (the socket buffers' 4 MiB
/// maximum here, our copy buffers, 1 MiB pipes, 64 KiB WebSocket messages), small enough
/// that the whole matrix runs in a few minutes in a debug build on 2 cores.
pub(crate) const SIZE: usize = 6 * 1024 * 1024;
/// The half-close request and answer: each 1 MiB.
pub(crate) const HALF_CLOSE_SIZE: usize = 1024 * 1024;
/// What the sending end offers in the reset scenarios: 64 MiB, more than every buffer on a
/// path with a relay hop can take once the receiving end stops reading (two connections'
/// socket buffers, which grow to 32 MiB here, and the relay's pipes), so that the sender
/// still has bytes to send when the reset comes. Only what fits is ever sent.
pub(crate) const RESET_TOTAL: usize = 64 * 1024 * 1024;
/// When the reset comes, and when the idle peer pauses: after 1 MiB.
pub(crate) const RESET_AFTER: usize = 1024 * 1024;
/// How long the idle peer pauses: less than half the relay's default `--linger` (5 s, the
/// documented limit for a direction that stays quiet after the other ended).
pub(crate) const IDLE: std::time::Duration = std::time::Duration::from_secs(2);

/// How long the program of the `exec` row pauses: longer than the relay's default `--linger`
/// (5 s), which must not cut a connection while its program runs (issue 31, item 3: the
/// program's exit is the end).
pub(crate) const PROGRAM_IDLE: std::time::Duration = std::time::Duration::from_secs(6);

/// How the far end of a row is made.
#[derive(Clone, Copy)]
pub(crate) enum Server {
    /// A server description, listened on (library) or given to `endpoints listen`/`relay`;
    /// the argument is a directory of the cell's own (for socket files).
    Listen(fn(&Fixture, &std::path::Path) -> String),
    /// A listening socket passed by socket activation (`systemd-socket-activate -l`), adopted
    /// by this description; command only.
    Activated(&'static str),
    /// No listener: `exec:` runs a program per scenario (the program is the far end).
    Program,
}

/// What runs the client end in the command modes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientCommand {
    /// `endpoints connect CLIENT`.
    Connect,
    /// `endpoints relay stdio: CLIENT`: the relay's own stdin and stdout are the client end.
    RelayStdio,
}

/// What a row needs set up first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Needs {
    /// The throw-away PKI (endpoints-test-support's `Pki`): server certificate and CA.
    Pki,
    /// A SOCKS5 proxy on loopback (in this process: see `fixture::proxy` for why not
    /// microsocks).
    Socks,
    /// An HTTP CONNECT proxy on loopback (in this process: see `fixture::proxy` for why not
    /// tinyproxy).
    HttpProxy,
    /// `systemd-socket-activate` (Debian package `systemd`).
    Activator,
    /// A real `sshd -D` on loopback with its keys (endpoints-test-support's `Sshd`).
    Sshd,
}

/// Where the far end is, for the client description.
pub(crate) enum Far<'a> {
    /// A listener's canonical description (what `listening on` shows).
    Listening(&'a str),
    /// The program `exec:` runs: its arguments.
    Program(&'a [String]),
}

/// Cells a row cannot run, or that fail today.
pub(crate) struct Mark {
    /// Empty: every mode.
    pub(crate) modes: &'static [Mode],
    /// Empty: every scenario.
    pub(crate) scenarios: &'static [Scenario],
    pub(crate) kind: MarkKind,
}

#[allow(dead_code)] // KnownFailing, KnownFailingAtTimes: none marked today; kept for the next type.
pub(crate) enum MarkKind {
    /// Not run: the reason (a guarantee the pair cannot keep, or a cell that has no meaning).
    Excluded(&'static str),
    /// Run, expected to fail today (`issue N item M`, and what goes wrong); a pass fails the
    /// test, so that the mark is removed with the fix.
    KnownFailing(&'static str, &'static str),
    /// Run, failing at times today because of the same defect (the race it loses depends on
    /// timing): a failure is reported as known, a pass is reported but not an error.
    KnownFailingAtTimes(&'static str, &'static str),
}

impl Needs {
    pub(crate) fn doc(self) -> &'static str {
        match self {
            Needs::Pki => "a PKI (endpoints-test-support)",
            Needs::Socks => "a SOCKS5 proxy that passes half-closes on (in the test)",
            Needs::HttpProxy => "an HTTP CONNECT proxy that passes half-closes on (in the test)",
            Needs::Activator => "systemd-socket-activate",
            Needs::Sshd => "a real sshd on loopback (endpoints-test-support)",
        }
    }
}

impl Mark {
    pub(crate) fn applies(&self, mode: Mode, scenario: Scenario) -> bool {
        (self.modes.is_empty() || self.modes.contains(&mode))
            && (self.scenarios.is_empty() || self.scenarios.contains(&scenario))
    }
}

/// One pair that meets on loopback.
pub(crate) struct Row {
    pub(crate) name: &'static str,
    /// The registered types (prefix, side) this row brings into the matrix.
    pub(crate) covers: &'static [(&'static str, Side)],
    pub(crate) server: Server,
    /// The far end's shape, for the docs (`{port}`, `{dir}`, ... as placeholders).
    pub(crate) server_doc: &'static str,
    pub(crate) client: fn(&Fixture, Far<'_>) -> String,
    pub(crate) client_doc: &'static str,
    pub(crate) client_command: ClientCommand,
    pub(crate) needs: &'static [Needs],
    pub(crate) marks: &'static [Mark],
}

impl Row {
    /// The mark on one cell, if any.
    pub(crate) fn mark(&self, mode: Mode, scenario: Scenario) -> Option<&MarkKind> {
        self.marks
            .iter()
            .find(|m| m.applies(mode, scenario))
            .map(|m| &m.kind)
    }
}

const LOOPBACK_TCP: &str = "tcp:0:interface=127.0.0.1";

fn tcp_server(_: &Fixture, _: &std::path::Path) -> String {
    LOOPBACK_TCP.into()
}

fn tcp_client(_: &Fixture, far: Far<'_>) -> String {
    format!("tcp:127.0.0.1:{}", port_of(listening(far)))
}

/// The port in an `ssh:` listener's `listen=ADDRESS\:PORT` (the port the SSH server chose
/// for `listen=0`; `port=` there is the SSH server's own).
fn forwarded_port_of(shown: &str) -> u16 {
    let at = shown
        .find(":listen=")
        .unwrap_or_else(|| panic!("no listen= in `{shown}`"))
        + ":listen=".len();
    let mut value = String::new();
    let mut chars = shown[at..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            ':' => break,
            c => value.push(c),
        }
    }
    let port = value.rsplit(':').next().unwrap_or_default();
    port.parse()
        .unwrap_or_else(|_| panic!("no port in listen={value} of `{shown}`"))
}

fn listening(far: Far<'_>) -> &str {
    match far {
        Far::Listening(shown) => shown,
        Far::Program(_) => panic!("this row's far end is a listener"),
    }
}

/// The relay's own reasons, shared by rows.
const NO_LIBRARY_ACTIVATION: &str = "the library adopts only descriptors passed to the process \
     by the LISTEN_FDS protocol, a property of the whole process; its own tests \
     (crates/endpoints-systemd/tests) run under systemd-socket-activate, and the command cells \
     here do";
/// The `ws:`/`wss:` clients check that the server is alive: a ping after 1 s of quiet, a pong
/// within 3 s (the stalled peer's cell waits about 4 s; its bound, 40 s, is 10x that).
const WS_PING: &str = "ping=1:pongTimeout=3";

/// Rows with no check that the peer is alive: a stopped peer is waited for.
const NO_LIVENESS: Mark = Mark {
    modes: &[],
    scenarios: &[Scenario::StalledPeer],
    kind: MarkKind::Excluded(
        "nothing on this pair checks that the peer is alive (TCP keepalive is off by default): \
         a stopped peer is waited for, as with nc and socat; `relay --idle-timeout` and \
         `ws:`'s `ping=` are the tools",
    ),
};

/// Every row. Add one for a new type.
pub(crate) static ROWS: &[Row] = &[
    Row {
        name: "tcp",
        covers: &[("tcp", Side::Server), ("tcp", Side::Client)],
        server: Server::Listen(tcp_server),
        server_doc: "tcp:0:interface=127.0.0.1",
        client: tcp_client,
        client_doc: "tcp:127.0.0.1:{port}",
        client_command: ClientCommand::Connect,
        needs: &[],
        marks: &[NO_LIVENESS],
    },
    Row {
        name: "tcp6",
        covers: &[("tcp6", Side::Server)],
        server: Server::Listen(|_, _| r"tcp6:0:interface=\:\:1".into()),
        server_doc: r"tcp6:0:interface=\:\:1",
        client: |_, far| format!(r"tcp:host=\:\:1:port={}", port_of(listening(far))),
        client_doc: r"tcp:host=\:\:1:port={port}",
        client_command: ClientCommand::Connect,
        needs: &[],
        marks: &[NO_LIVENESS],
    },
    Row {
        name: "hostname",
        covers: &[("hostname", Side::Client)],
        server: Server::Listen(tcp_server),
        server_doc: "tcp:0:interface=127.0.0.1",
        client: |_, far| format!("hostname:localhost:{}", port_of(listening(far))),
        client_doc: "hostname:localhost:{port}",
        client_command: ClientCommand::Connect,
        needs: &[],
        marks: &[NO_LIVENESS],
    },
    Row {
        name: "unix",
        covers: &[("unix", Side::Server), ("unix", Side::Client)],
        server: Server::Listen(|_, dir| {
            format!("unix:{}", escape(&dir.join("s.sock").display().to_string()))
        }),
        server_doc: "unix:{dir}/s.sock",
        client: |_, far| format!("unix:{}", escape(&unix_path_of(listening(far)))),
        client_doc: "unix:{dir}/s.sock",
        client_command: ClientCommand::Connect,
        needs: &[],
        marks: &[NO_LIVENESS],
    },
    Row {
        name: "tls",
        covers: &[("tls", Side::Server), ("tls", Side::Client)],
        server: Server::Listen(|fx, _| {
            format!(
                "tls:{}:0:interface=127.0.0.1",
                escape(&fx.tls_dir().display().to_string())
            )
        }),
        server_doc: "tls:{pki}/server:0:interface=127.0.0.1",
        client: |fx, far| {
            format!(
                "tls:localhost:{}:trustRoots={}",
                port_of(listening(far)),
                escape(&fx.ca_file().display().to_string())
            )
        },
        client_doc: "tls:localhost:{port}:trustRoots={pki}/ca.pem",
        client_command: ClientCommand::Connect,
        needs: &[Needs::Pki],
        marks: &[NO_LIVENESS],
    },
    Row {
        name: "ssl",
        covers: &[("ssl", Side::Server), ("ssl", Side::Client)],
        server: Server::Listen(|fx, _| {
            format!(
                "ssl:0:interface=127.0.0.1:privateKey={}:certKey={}",
                escape(&fx.key_file().display().to_string()),
                escape(&fx.cert_file().display().to_string())
            )
        }),
        server_doc: "ssl:0:interface=127.0.0.1:privateKey={pki}/server-key.pem:certKey={pki}/server-cert.pem",
        client: |fx, far| {
            format!(
                "ssl:localhost:{}:caCertsDir={}",
                port_of(listening(far)),
                escape(&fx.ca_dir().display().to_string())
            )
        },
        client_doc: "ssl:localhost:{port}:caCertsDir={pki}/ca",
        client_command: ClientCommand::Connect,
        needs: &[Needs::Pki],
        marks: &[NO_LIVENESS],
    },
    Row {
        name: "haproxy",
        covers: &[("haproxy", Side::Server), ("haproxy", Side::Client)],
        server: Server::Listen(|_, _| "haproxy:trusted=127.0.0.1:tcp:0:interface=127.0.0.1".into()),
        server_doc: "haproxy:trusted=127.0.0.1:tcp:0:interface=127.0.0.1",
        client: |_, far| format!("haproxy:tcp:127.0.0.1:{}", port_of(listening(far))),
        client_doc: "haproxy:tcp:127.0.0.1:{port}",
        client_command: ClientCommand::Connect,
        needs: &[],
        marks: &[NO_LIVENESS],
    },
    Row {
        name: "ws",
        covers: &[("ws", Side::Server), ("ws", Side::Client)],
        server: Server::Listen(|_, _| "ws:tcp:0:interface=127.0.0.1".into()),
        server_doc: "ws:tcp:0:interface=127.0.0.1",
        client: |_, far| format!("ws:127.0.0.1:{}:{WS_PING}", port_of(listening(far))),
        client_doc: "ws:127.0.0.1:{port}:ping=1:pongTimeout=3",
        client_command: ClientCommand::Connect,
        needs: &[],
        marks: WS_MARKS,
    },
    Row {
        name: "wss",
        covers: &[("wss", Side::Client)],
        server: Server::Listen(|fx, _| {
            format!(
                "ws:tls:{}:0:interface=127.0.0.1",
                escape(&fx.tls_dir().display().to_string())
            )
        }),
        server_doc: "ws:tls:{pki}/server:0:interface=127.0.0.1",
        client: |fx, far| {
            format!(
                "wss:localhost:{}:trustRoots={}:{WS_PING}",
                port_of(listening(far)),
                escape(&fx.ca_file().display().to_string())
            )
        },
        client_doc: "wss:localhost:{port}:trustRoots={pki}/ca.pem:ping=1:pongTimeout=3",
        client_command: ClientCommand::Connect,
        needs: &[Needs::Pki],
        marks: WSS_MARKS,
    },
    Row {
        name: "exec",
        covers: &[("exec", Side::Client)],
        server: Server::Program,
        server_doc: "a program per scenario: cat, sh -c 'cat >out && exec cat answer', ...",
        client: |_, far| match far {
            Far::Program(argv) => {
                let fields: Vec<String> = argv.iter().map(|a| escape(a)).collect();
                format!("exec:{}", fields.join(":"))
            }
            Far::Listening(_) => panic!("exec: runs a program"),
        },
        client_doc: "exec:{program}:{args}",
        client_command: ClientCommand::Connect,
        needs: &[],
        marks: &[
            NO_LIVENESS,
            Mark {
                modes: &[Mode::RelayListening],
                scenarios: &[],
                kind: MarkKind::Excluded(
                    "exec: is a client type only: a relay cannot listen on a program",
                ),
            },
            Mark {
                modes: &[Mode::Library],
                scenarios: &[Scenario::HalfCloseServerFirst],
                kind: MarkKind::Excluded(
                    "the end of a program's output is the end of the stream only once the \
                     program has exited (docs/grammar.md, `exec`): a program that closes its \
                     stdout and then reads is not seen to have ended, so a client that waits \
                     for that end before answering waits for ever (the command cells pass: \
                     their client answers once the greeting's bytes are in)",
                ),
            },
            Mark {
                modes: &[Mode::Library, Mode::Command],
                scenarios: &[Scenario::ResetDuringDownload],
                kind: MarkKind::Excluded(
                    "the far end is the program: once the client end is gone nothing of ours \
                     is left to be loud (the relay cell checks the relay's warning)",
                ),
            },
        ],
    },
    Row {
        name: "socks5",
        covers: &[("socks5", Side::Client)],
        server: Server::Listen(tcp_server),
        server_doc: "tcp:0:interface=127.0.0.1",
        client: |fx, far| {
            format!(
                "socks5:127.0.0.1:{}:proxy={}",
                port_of(listening(far)),
                escape(&format!("tcp:127.0.0.1:{}", fx.socks_port()))
            )
        },
        client_doc: r"socks5:127.0.0.1:{port}:proxy=tcp\:127.0.0.1\:{socks5 proxy}",
        client_command: ClientCommand::Connect,
        needs: &[Needs::Socks],
        marks: &[NO_LIVENESS],
    },
    Row {
        name: "tor",
        covers: &[("tor", Side::Client)],
        server: Server::Listen(tcp_server),
        server_doc: "tcp:0:interface=127.0.0.1",
        client: |fx, far| {
            format!(
                "tor:host=127.0.0.1:port={}:socksPort={}",
                port_of(listening(far)),
                fx.socks_port()
            )
        },
        client_doc: "tor:host=127.0.0.1:port={port}:socksPort={socks5 proxy}",
        client_command: ClientCommand::Connect,
        needs: &[Needs::Socks],
        marks: &[
            NO_LIVENESS,
            Mark {
                modes: &[],
                scenarios: &[
                    Scenario::Upload,
                    Scenario::Download,
                    Scenario::Echo,
                    Scenario::HalfCloseClientFirst,
                    Scenario::HalfCloseServerFirst,
                ],
                kind: MarkKind::Excluded(
                    "Tor does not keep a half-closed stream: once one side ends, Tor ends the \
                     whole stream when it has delivered what it holds (docs/grammar.md, `tor`), \
                     so these cells, which end one input first, would pass through the \
                     stand-in SOCKS proxy and say nothing of Tor; the private Tor network's \
                     test (crates/endpoints-tor/tests/testnet.rs) checks 4 MiB each way, read \
                     back before either end, and with `halfClose=inband` on both of our ends \
                     4 MiB written then ended at once, all of it back before a clean end",
                ),
            },
        ],
    },
    Row {
        name: "ssh",
        covers: &[("ssh", Side::Client)],
        server: Server::Listen(tcp_server),
        server_doc: "tcp:0:interface=127.0.0.1",
        client: |fx, far| {
            let sshd = fx.sshd();
            format!(
                "ssh:127.0.0.1:{}:forward=127.0.0.1\\:{}:username=root:keys={}:knownHosts={}:agent=no",
                sshd.port,
                port_of(listening(far)),
                escape(&sshd.path("user_key")),
                escape(&sshd.path("known_hosts")),
            )
        },
        client_doc: r"ssh:127.0.0.1:{sshd}:forward=127.0.0.1\:{port}:username=root:keys={key}:knownHosts={known_hosts}:agent=no",
        client_command: ClientCommand::Connect,
        needs: &[Needs::Sshd],
        marks: &[NO_LIVENESS],
    },
    Row {
        name: "ssh-listen",
        covers: &[("ssh", Side::Server)],
        server: Server::Listen(|fx, _| {
            let sshd = fx.sshd();
            format!(
                "ssh:127.0.0.1:{}:listen=0:username=root:keys={}:knownHosts={}:agent=no",
                sshd.port,
                escape(&sshd.path("user_key")),
                escape(&sshd.path("known_hosts")),
            )
        }),
        server_doc: "ssh:127.0.0.1:{sshd}:listen=0:username=root:keys={key}:knownHosts={known_hosts}:agent=no",
        client: |_, far| format!("tcp:127.0.0.1:{}", forwarded_port_of(listening(far))),
        client_doc: "tcp:127.0.0.1:{port the SSH server chose, from the listener's `listen=`}",
        client_command: ClientCommand::Connect,
        needs: &[Needs::Sshd],
        marks: &[NO_LIVENESS],
    },
    Row {
        name: "httpconnect",
        covers: &[("httpconnect", Side::Client)],
        server: Server::Listen(tcp_server),
        server_doc: "tcp:0:interface=127.0.0.1",
        client: |fx, far| {
            format!(
                "httpconnect:127.0.0.1:{}:proxy={}",
                port_of(listening(far)),
                escape(&format!("tcp:127.0.0.1:{}", fx.http_port()))
            )
        },
        client_doc: r"httpconnect:127.0.0.1:{port}:proxy=tcp\:127.0.0.1\:{http proxy}",
        client_command: ClientCommand::Connect,
        needs: &[Needs::HttpProxy],
        marks: &[NO_LIVENESS],
    },
    Row {
        name: "fd",
        covers: &[("fd", Side::Server)],
        server: Server::Activated("fd:3"),
        server_doc: "fd:3 (systemd-socket-activate -l 127.0.0.1:{port})",
        client: tcp_client,
        client_doc: "tcp:127.0.0.1:{port}",
        client_command: ClientCommand::Connect,
        needs: &[Needs::Activator],
        marks: &[
            Mark {
                modes: &[Mode::Library],
                scenarios: &[],
                kind: MarkKind::Excluded(NO_LIBRARY_ACTIVATION),
            },
            NO_LIVENESS,
        ],
    },
    Row {
        name: "systemd",
        covers: &[("systemd", Side::Server)],
        server: Server::Activated("systemd:INET:0"),
        server_doc: "systemd:INET:0 (systemd-socket-activate -l 127.0.0.1:{port})",
        client: tcp_client,
        client_doc: "tcp:127.0.0.1:{port}",
        client_command: ClientCommand::Connect,
        needs: &[Needs::Activator],
        marks: &[
            Mark {
                modes: &[Mode::Library],
                scenarios: &[],
                kind: MarkKind::Excluded(NO_LIBRARY_ACTIVATION),
            },
            NO_LIVENESS,
        ],
    },
    Row {
        name: "stdio",
        covers: &[("stdio", Side::Server)],
        server: Server::Listen(tcp_server),
        server_doc: "tcp:0:interface=127.0.0.1",
        client: tcp_client,
        client_doc: "relay stdio: tcp:127.0.0.1:{port} (the relay's stdin and stdout are the client end)",
        client_command: ClientCommand::RelayStdio,
        needs: &[],
        marks: &[
            NO_LIVENESS,
            Mark {
                modes: &[Mode::Library],
                scenarios: &[],
                kind: MarkKind::Excluded(
                    "stdio: is the process's own stdin and stdout: the test process's are not \
                     ours to take",
                ),
            },
            Mark {
                modes: &[Mode::RelayListening, Mode::RelayConnecting],
                scenarios: &[],
                kind: MarkKind::Excluded(
                    "the stdio: row's command cells already run a relay (`relay stdio: ...`)",
                ),
            },
        ],
    },
];

/// The `ws:` cells a pair cannot run.
static WS_MARKS: &[Mark] = &[
    Mark {
        modes: &[Mode::RelayListening],
        scenarios: &[Scenario::StalledPeer],
        kind: MarkKind::Excluded(
            "the stopped end is behind the relay's plain tcp: hop, which nothing checks; the \
             relay itself answers the client's pings",
        ),
    },
    Mark {
        modes: &[Mode::Library, Mode::Command],
        scenarios: &[Scenario::StalledPeer],
        kind: MarkKind::Excluded(WS_STALL_AFTER_OUR_END),
    },
];

/// The `wss:` cells a pair cannot run.
static WSS_MARKS: &[Mark] = &[
    Mark {
        modes: &[Mode::RelayListening],
        scenarios: &[Scenario::StalledPeer],
        kind: MarkKind::Excluded(
            "the stopped end is behind the relay's plain tcp: hop, which nothing checks; the \
             relay itself answers the client's pings",
        ),
    },
    Mark {
        modes: &[Mode::Library, Mode::Command],
        scenarios: &[Scenario::StalledPeer],
        kind: MarkKind::Excluded(WS_STALL_AFTER_OUR_END),
    },
];

const WS_STALL_AFTER_OUR_END: &str = "the client's input is at its end from the start, and \
     between our ends that end goes in-band (the half-close agreed in the upgrade): from then \
     on the server owes no pong (its application need not read again), so a stopped server \
     cannot be told from one that takes its time to answer, and keepalive pings stop. The \
     command bounds it with --linger (connect) or --idle-timeout (relay); against a peer that \
     is not ours, our Close goes out instead and its answer is bounded by pongTimeout=";

/// Registered types with no row, and why.
pub(crate) static NOT_IN_MATRIX: &[(&str, Side, &str)] = &[
    (
        "onion",
        Side::Server,
        "its listener is reachable only through Tor, once its descriptor is published: a \
         private Tor network of 8 processes and 12 to 55 s, started by the crate's own test \
         (crates/endpoints-tor/tests/testnet.rs: 4 MiB each way with our `tor:`, txtorcon's \
         client, a restart keeping the address); its connections are a unix (default) or tcp \
         listener's, which the `unix` and `tcp` rows cover",
    ),
    (
        "acme",
        Side::Server,
        "needs an ACME directory to issue its certificate (pebble: \
     crates/endpoints-acme/tests/acme/pebble.rs); once issued, its connections are the `tls` \
     server's, which the `tls` row covers",
    ),
];
