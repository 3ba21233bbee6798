//! The command cells: `endpoints connect` to `endpoints listen`, directly or through an
//! `endpoints relay` hop with the row's pair on the relay's listening or connecting side.
//! The ends' stdin and stdout are files, /dev/null, or pipes this test drives (to answer after
//! a request, to pause, or to kill an end mid-transfer).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::fixture::{Fixture, read_file, same};
use crate::program::program_for;
use crate::table::{
    ClientCommand, Far, IDLE, Mode, RESET_AFTER, RESET_TOTAL, Row, Scenario, Server,
};

const BIN: &str = env!("CARGO_BIN_EXE_endpoints");

/// How long one cell, and each step in it, may take: a cell takes about a second in a debug
/// build (TLS included; the idle peer's 2 s pause more); 40 s is over 10x that on a loaded
/// 2-core machine.
pub(crate) const BOUND: Duration = Duration::from_secs(40);

/// A plain far end for the relay cells with the pair on the relay's listening side.
const PLAIN_SERVER: &str = "tcp:0:interface=127.0.0.1";

#[derive(Clone, Copy)]
enum In {
    Null,
    File,
    Pipe,
}

#[derive(Clone, Copy)]
enum Out {
    Null,
    File,
    Pipe,
}

/// A running `endpoints` process with its stderr lines kept.
struct Proc {
    what: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
}

/// What a process waits for before it is ready.
enum Ready {
    Now,
    /// Its `listening on DESC` line: returns DESC.
    Listening,
    /// systemd-socket-activate's `Listening on 127.0.0.1:PORT as 3.`.
    Activated(u16),
}

async fn spawn(
    what: &str,
    program: &str,
    args: &[String],
    stdin: Stdio,
    stdout: Stdio,
    ready: Ready,
) -> Result<(Proc, Option<String>), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let mut lines_in = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let kept = lines.clone();
    let want: Option<String> = match ready {
        Ready::Now => None,
        Ready::Listening => Some("listening on ".into()),
        Ready::Activated(port) => Some(format!("Listening on 127.0.0.1:{port} as 3.")),
    };
    let mut tx = Some(tx);
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines_in.next_line().await {
            if let Some(w) = &want
                && l.starts_with(w.as_str())
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(l.clone());
            }
            kept.lock().expect("lines").push(l);
        }
    });
    let shown = match ready {
        Ready::Now => None,
        Ready::Listening => {
            let line = tokio::time::timeout(Duration::from_secs(30), rx)
                .await
                .map_err(|_| format!("{what} did not say where it listens within 30 s"))?
                .map_err(|_| {
                    format!(
                        "{what} ended before listening: {:?}",
                        lines.lock().expect("lines")
                    )
                })?;
            Some(line["listening on ".len()..].to_owned())
        }
        Ready::Activated(port) => {
            tokio::time::timeout(Duration::from_secs(30), rx)
                .await
                .map_err(|_| format!("{what}: the activator did not listen within 30 s"))?
                .map_err(|_| format!("{what} ended before listening"))?;
            Some(format!("tcp:port={port}:interface=127.0.0.1"))
        }
    };
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    Ok((
        Proc {
            what: what.into(),
            child,
            lines,
            stdin,
            stdout,
        },
        shown,
    ))
}

impl Proc {
    /// The exit code, bounded.
    async fn exit(&mut self) -> Result<Option<i32>, String> {
        let status = tokio::time::timeout(BOUND, self.child.wait())
            .await
            .map_err(|_| format!("{} did not end within {BOUND:?}", self.what))?
            .map_err(|e| format!("{}: {e}", self.what))?;
        Ok(status.code())
    }

    fn log(&self) -> String {
        self.lines.lock().expect("lines").join(" | ")
    }

    /// The first stderr line starting with `prefix`, waiting for it (bounded).
    async fn line(&self, prefix: &str) -> Result<String, String> {
        for _ in 0..(BOUND.as_millis() / 50) {
            if let Some(l) = self
                .lines
                .lock()
                .expect("lines")
                .iter()
                .find(|l| l.starts_with(prefix))
            {
                return Ok(l.clone());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "{}: no line starting with {prefix:?}: {}",
            self.what,
            self.log()
        ))
    }
}

fn stdin_of(i: In, file: &Path) -> Stdio {
    match i {
        In::Null => Stdio::null(),
        In::File => Stdio::from(std::fs::File::open(file).expect("open")),
        In::Pipe => Stdio::piped(),
    }
}

fn stdout_of(o: Out, file: &Path) -> Stdio {
    match o {
        Out::Null => Stdio::null(),
        Out::File => Stdio::from(std::fs::File::create(file).expect("create")),
        Out::Pipe => Stdio::piped(),
    }
}

/// The far end's (server's) and the client end's stdin and stdout in each scenario, and the
/// file each stdin reads.
fn plan(fx: &Fixture, scenario: Scenario) -> ((In, Out, PathBuf), (In, Out, PathBuf)) {
    let data = fx.data_file.clone();
    let first = fx.first_file.clone();
    match scenario {
        Scenario::Upload => (
            (In::Null, Out::File, data.clone()),
            (In::File, Out::Null, data),
        ),
        Scenario::Download => (
            (In::File, Out::Null, data.clone()),
            (In::Null, Out::File, data),
        ),
        Scenario::Echo => (
            (In::Null, Out::Null, data.clone()),
            (In::File, Out::File, data),
        ),
        Scenario::HalfCloseClientFirst => (
            (In::Pipe, Out::Pipe, first.clone()),
            (In::File, Out::File, first),
        ),
        Scenario::HalfCloseServerFirst => (
            (In::File, Out::File, first.clone()),
            (In::Pipe, Out::Pipe, first),
        ),
        // The sending end's stdin is fed RESET_TOTAL bytes by the test.
        Scenario::ResetDuringUpload => (
            (In::Null, Out::Pipe, data.clone()),
            (In::Pipe, Out::Null, data),
        ),
        Scenario::ResetDuringDownload => (
            (In::Pipe, Out::Null, data.clone()),
            (In::Null, Out::Pipe, data),
        ),
        Scenario::IdlePeer => (
            (In::Pipe, Out::Null, data.clone()),
            (In::Null, Out::File, data),
        ),
        Scenario::StalledPeer => (
            (In::Pipe, Out::Null, data.clone()),
            (In::Null, Out::Pipe, data),
        ),
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|a| (*a).to_owned()).collect()
}

/// `endpoints ARGS`, or `systemd-socket-activate -l 127.0.0.1:PORT endpoints ARGS` when the
/// listening description is adopted by socket activation.
fn endpoints_args(activated: Option<u16>, args: Vec<String>) -> (String, Vec<String>, Ready) {
    match activated {
        None => (BIN.into(), args, Ready::Listening),
        Some(port) => {
            let mut a = s(&["-l", &format!("127.0.0.1:{port}"), BIN]);
            a.extend(args);
            ("systemd-socket-activate".into(), a, Ready::Activated(port))
        }
    }
}

/// One command cell: `Err` says what went wrong.
pub(crate) async fn cell(
    fx: &Fixture,
    row: &Row,
    mode: Mode,
    scenario: Scenario,
    dir: &Path,
) -> Result<(), String> {
    let ((s_in, s_out, s_file), (c_in, c_out, c_file)) = plan(fx, scenario);
    let server_out = dir.join("server.out");
    let client_out = dir.join("client.out");
    let echo = scenario == Scenario::Echo;

    // The far end: a listener (the row's, or a plain one behind a relay), or a program.
    let (server_desc, activated): (Option<String>, Option<u16>) = match (mode, row.server) {
        (Mode::RelayListening, _) => (Some(PLAIN_SERVER.into()), None),
        (_, Server::Listen(f)) => (Some(f(fx, dir)), None),
        (_, Server::Activated(desc)) => (Some(desc.into()), Some(crate::fixture::free_port())),
        (_, Server::Program) => (None, None),
    };
    let mut program_out = None;
    let (mut server, far) = match server_desc {
        Some(desc) => {
            let mut args = s(&["listen", &desc]);
            if echo {
                args.extend(s(&["--echo", "--once"]));
            } else {
                args.push("--once".into());
            }
            let (prog, args, ready) = endpoints_args(activated, args);
            let (p, shown) = spawn(
                "listen",
                &prog,
                &args,
                if echo {
                    Stdio::null()
                } else {
                    stdin_of(s_in, &s_file)
                },
                if echo {
                    Stdio::null()
                } else {
                    stdout_of(s_out, &server_out)
                },
                ready,
            )
            .await?;
            (Some(p), FarEnd::Listening(shown.expect("shown")))
        }
        None => {
            let (argv, out) = program_for(fx, dir, scenario);
            program_out = Some(out);
            (None, FarEnd::Program(argv))
        }
    };

    // The relay hop, and the client description the client end uses.
    let (relay, client_desc) = match mode {
        Mode::Library => unreachable!("library cells run in library.rs"),
        Mode::Command => (None, far.client(row, fx)),
        Mode::RelayListening => {
            let listen_on = match row.server {
                Server::Listen(f) => f(fx, dir),
                Server::Activated(desc) => desc.into(),
                Server::Program => unreachable!("excluded"),
            };
            let activated = match row.server {
                Server::Activated(_) => Some(crate::fixture::free_port()),
                _ => None,
            };
            let FarEnd::Listening(far_shown) = &far else {
                unreachable!("a plain listener")
            };
            let target = format!("tcp:127.0.0.1:{}", crate::fixture::port_of(far_shown));
            let (prog, args, ready) = endpoints_args(activated, s(&["relay", &listen_on, &target]));
            let (p, shown) =
                spawn("relay", &prog, &args, Stdio::null(), Stdio::null(), ready).await?;
            let shown = shown.expect("shown");
            (Some(p), (row.client)(fx, Far::Listening(&shown)))
        }
        Mode::RelayConnecting => {
            let target = far.client(row, fx);
            let (p, shown) = spawn(
                "relay",
                BIN,
                &s(&["relay", PLAIN_SERVER, &target]),
                Stdio::null(),
                Stdio::null(),
                Ready::Listening,
            )
            .await?;
            let port = crate::fixture::port_of(&shown.expect("shown"));
            (Some(p), format!("tcp:127.0.0.1:{port}"))
        }
    };

    let client_args = match (row.client_command, mode) {
        (ClientCommand::RelayStdio, Mode::Command) => s(&["relay", "stdio:", &client_desc]),
        _ => s(&["connect", &client_desc]),
    };
    let (mut client, _) = spawn(
        "connect",
        BIN,
        &client_args,
        stdin_of(c_in, &c_file),
        stdout_of(c_out, &client_out),
        Ready::Now,
    )
    .await?;

    // Feed the sending end of a reset scenario (until it is gone).
    let feeder = match scenario {
        Scenario::ResetDuringUpload => client.stdin.take(),
        Scenario::ResetDuringDownload => server.as_mut().and_then(|s| s.stdin.take()),
        _ => None,
    }
    .map(|mut w| {
        let data = fx.data.clone();
        tokio::spawn(async move {
            let mut left = RESET_TOTAL;
            while left > 0 {
                let n = left.min(data.len());
                if w.write_all(&data[..n]).await.is_err() {
                    return;
                }
                left -= n;
            }
        })
    });

    // Drive the pipes.
    let mut held_stdin = None;
    let driven: Result<(), String> = match scenario {
        Scenario::HalfCloseClientFirst => match server.as_mut() {
            Some(srv) => {
                let got = read_n(srv, fx.first.len()).await?;
                same("the server end received", &got, &fx.first)?;
                let mut w = srv.stdin.take().expect("stdin");
                w.write_all(&fx.second)
                    .await
                    .map_err(|e| format!("answer: {e}"))?;
                drop(w);
                let rest = read_rest(srv).await?;
                same("after the request, the server end received", &rest, &[])
            }
            None => Ok(()),
        },
        Scenario::HalfCloseServerFirst => {
            let got = read_n(&mut client, fx.first.len()).await?;
            same("the client end received", &got, &fx.first)?;
            let mut w = client.stdin.take().expect("stdin");
            w.write_all(&fx.second)
                .await
                .map_err(|e| format!("answer: {e}"))?;
            drop(w);
            let rest = read_rest(&mut client).await?;
            same("after the greeting, the client end received", &rest, &[])
        }
        Scenario::ResetDuringUpload => match server.as_mut() {
            Some(srv) => {
                read_n(srv, RESET_AFTER).await?;
                srv.child.start_kill().map_err(|e| format!("kill: {e}"))
            }
            None => Ok(()),
        },
        Scenario::ResetDuringDownload => {
            read_n(&mut client, RESET_AFTER).await?;
            client.child.start_kill().map_err(|e| format!("kill: {e}"))
        }
        Scenario::IdlePeer => match server.as_mut() {
            Some(srv) => {
                let mut w = srv.stdin.take().expect("stdin");
                let sent = async {
                    w.write_all(&fx.data[..RESET_AFTER]).await?;
                    tokio::time::sleep(IDLE).await;
                    w.write_all(&fx.data[RESET_AFTER..]).await
                };
                let r = sent
                    .await
                    .map_err(|e| format!("the idle server end's stdin: {e}"));
                drop(w);
                r
            }
            None => Ok(()),
        },
        Scenario::StalledPeer => match server.as_mut() {
            Some(srv) => {
                let mut w = srv.stdin.take().expect("stdin");
                w.write_all(&fx.data[..RESET_AFTER])
                    .await
                    .map_err(|e| format!("the stalling server end's stdin: {e}"))?;
                read_n(&mut client, RESET_AFTER).await?;
                let pid = srv.child.id().expect("running").to_string();
                let stopped = std::process::Command::new("kill")
                    .args(["-STOP", &pid])
                    .status()
                    .map_err(|e| format!("kill -STOP: {e}"))?;
                // Keep its stdin open: the stop, not an end, is the point.
                held_stdin = Some(w);
                if stopped.success() {
                    Ok(())
                } else {
                    Err("kill -STOP failed".into())
                }
            }
            None => Ok(()),
        },
        _ => Ok(()),
    };

    let client_code = client.exit().await?;
    if scenario == Scenario::StalledPeer
        && let Some(srv) = server.as_mut()
    {
        // SIGKILL ends a stopped process too.
        let _ = srv.child.start_kill();
    }
    let server_code = match server.as_mut() {
        Some(s) => Some(s.exit().await?),
        None => None,
    };
    drop(held_stdin);
    // Only now: an end of the feed before the sending end has failed would be a clean end.
    if let Some(f) = feeder {
        f.abort();
    }
    let logs = || {
        format!(
            "connect: {}{}{}",
            client.log(),
            server
                .as_ref()
                .map(|s| format!("; listen: {}", s.log()))
                .unwrap_or_default(),
            relay
                .as_ref()
                .map(|r| format!("; relay: {}", r.log()))
                .unwrap_or_default()
        )
    };
    driven.map_err(|e| format!("{e} ({})", logs()))?;
    let relay_line = match &relay {
        Some(r) => Some(r.line("relay ").await?),
        None => None,
    };
    let clean_relay = |line: &Option<String>| match line {
        None => Ok(()),
        Some(l) if l.ends_with(", spliced") || l.ends_with(", copied") => Ok(()),
        Some(l) => Err(format!("the relay did not end cleanly: {l}")),
    };
    let expect_clean = |ends: Result<(), String>| -> Result<(), String> {
        let codes_ok = client_code == Some(0) && server_code.is_none_or(|c| c == Some(0));
        if !codes_ok {
            return Err(format!(
                "exit statuses: connect {client_code:?}, listen {server_code:?} ({})",
                logs()
            ));
        }
        clean_relay(&relay_line)?;
        ends.map_err(|e| format!("{e} ({})", logs()))
    };
    match scenario {
        Scenario::Upload => expect_clean(match (&program_out, server.is_some()) {
            (Some(out), _) => same("the program received", &read_file(out), &fx.data),
            (None, _) => same("the server end received", &read_file(&server_out), &fx.data),
        }),
        Scenario::Download | Scenario::IdlePeer => expect_clean(same(
            "the client end received",
            &read_file(&client_out),
            &fx.data,
        )),
        Scenario::Echo => expect_clean(same(
            "the client end got back",
            &read_file(&client_out),
            &fx.data,
        )),
        Scenario::HalfCloseClientFirst => expect_clean(
            same(
                "the client end received the answer",
                &read_file(&client_out),
                &fx.second,
            )
            .and_then(|()| match &program_out {
                Some(out) => same("the program received", &read_file(out), &fx.first),
                None => Ok(()),
            }),
        ),
        Scenario::HalfCloseServerFirst => expect_clean(match &program_out {
            Some(out) => same(
                "the program received the answer",
                &read_file(out),
                &fx.second,
            ),
            None => same(
                "the server end received the answer",
                &read_file(&server_out),
                &fx.second,
            ),
        }),
        Scenario::ResetDuringUpload => {
            if client_code == Some(0) {
                return Err(format!(
                    "connect exited 0 although its peer went away mid-transfer ({})",
                    logs()
                ));
            }
            match &relay_line {
                Some(l) if clean_relay(&relay_line).is_ok() => {
                    Err(format!("the relay called a cut transfer clean: {l}"))
                }
                _ => Ok(()),
            }
        }
        Scenario::StalledPeer => {
            if client_code == Some(0) {
                return Err(format!(
                    "connect exited 0 although its peer stopped mid-transfer ({})",
                    logs()
                ));
            }
            match &relay_line {
                Some(l) if clean_relay(&relay_line).is_ok() => {
                    Err(format!("the relay called a stalled transfer clean: {l}"))
                }
                _ => Ok(()),
            }
        }
        Scenario::ResetDuringDownload => {
            if let Some(code) = server_code
                && code == Some(0)
            {
                return Err(format!(
                    "listen exited 0 although its peer went away mid-transfer ({})",
                    logs()
                ));
            }
            match &relay_line {
                Some(l) if clean_relay(&relay_line).is_ok() => {
                    Err(format!("the relay called a cut transfer clean: {l}"))
                }
                _ => Ok(()),
            }
        }
    }
}

enum FarEnd {
    Listening(String),
    Program(Vec<String>),
}

impl FarEnd {
    fn client(&self, row: &Row, fx: &Fixture) -> String {
        match self {
            FarEnd::Listening(shown) => (row.client)(fx, Far::Listening(shown)),
            FarEnd::Program(argv) => (row.client)(fx, Far::Program(argv)),
        }
    }
}

/// Read exactly `n` bytes from a process's stdout pipe (bounded).
async fn read_n(p: &mut Proc, n: usize) -> Result<Vec<u8>, String> {
    let out = p.stdout.as_mut().expect("stdout is a pipe");
    let mut buf = vec![0u8; n];
    match tokio::time::timeout(BOUND, out.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Ok(buf),
        Ok(Err(e)) => Err(format!(
            "{}'s stdout ended early: {e} ({})",
            p.what,
            p.log()
        )),
        Err(_) => Err(format!(
            "{}'s stdout: {n} bytes did not come within {BOUND:?}",
            p.what
        )),
    }
}

/// Read a process's stdout pipe to its end (bounded).
async fn read_rest(p: &mut Proc) -> Result<Vec<u8>, String> {
    let out = p.stdout.as_mut().expect("stdout is a pipe");
    let mut buf = Vec::new();
    match tokio::time::timeout(BOUND, out.read_to_end(&mut buf)).await {
        Ok(Ok(_)) => Ok(buf),
        Ok(Err(e)) => Err(format!("{}'s stdout: {e}", p.what)),
        Err(_) => Err(format!("{}'s stdout did not end within {BOUND:?}", p.what)),
    }
}
