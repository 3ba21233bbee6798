//! The library cells: both ends in this process (`endpoints::listen`, `accept`,
//! `endpoints::connect`), or the client end and a program (`exec:`).

use std::io;
use std::path::Path;
use std::time::Duration;

use endpoints::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture::{Fixture, read_file, same};
use crate::program::program_for;
use crate::table::{Far, IDLE, RESET_AFTER, RESET_TOTAL, Row, Scenario, Server};

/// One library cell: `Err` says what went wrong.
pub(crate) async fn cell(
    fx: &Fixture,
    row: &Row,
    scenario: Scenario,
    dir: &Path,
) -> Result<(), String> {
    match row.server {
        Server::Listen(server) => {
            let server = server(fx, dir);
            let mut listener = endpoints::listen(&server)
                .await
                .map_err(|e| format!("listen: {e}"))?;
            let shown = listener.to_string();
            let client = (row.client)(fx, Far::Listening(&shown));
            let (accepted, connected) =
                tokio::join!(listener.accept(), endpoints::connect(&client));
            let server_end = accepted.map_err(|e| format!("accept: {e}"))?;
            let client_end = connected.map_err(|e| format!("connect: {e}"))?;
            drop(listener);
            both_ends(fx, scenario, server_end, client_end).await
        }
        Server::Program => {
            let (argv, out) = program_for(fx, dir, scenario);
            let client = (row.client)(fx, Far::Program(&argv));
            let conn = endpoints::connect(&client)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            with_program(fx, scenario, conn, &out).await
        }
        Server::Activated(_) => Err("socket activation has no library cell".into()),
    }
}

/// Send `data` and end this side, while reading the peer's bytes to their end.
async fn send(conn: Connection, data: &[u8]) -> io::Result<Vec<u8>> {
    let (mut r, mut w) = tokio::io::split(conn);
    let sending = async {
        w.write_all(data).await?;
        w.shutdown().await
    };
    let mut got = Vec::new();
    let (s, g) = tokio::join!(sending, r.read_to_end(&mut got));
    s?;
    g?;
    Ok(got)
}

/// Send [`RESET_TOTAL`] bytes (`data` again and again) and end this side, while reading the
/// peer's bytes to their end.
async fn send_total(conn: Connection, data: &[u8]) -> io::Result<Vec<u8>> {
    let (mut r, mut w) = tokio::io::split(conn);
    let sending = async {
        let mut left = RESET_TOTAL;
        while left > 0 {
            let n = left.min(data.len());
            w.write_all(&data[..n]).await?;
            left -= n;
        }
        w.shutdown().await
    };
    let mut got = Vec::new();
    let (s, g) = tokio::join!(sending, r.read_to_end(&mut got));
    s?;
    g?;
    Ok(got)
}

/// Send `data` with a pause of [`IDLE`] after the first [`RESET_AFTER`] bytes, then end this
/// side, while reading the peer's bytes to their end.
async fn send_pausing(conn: Connection, data: &[u8]) -> io::Result<Vec<u8>> {
    let (mut r, mut w) = tokio::io::split(conn);
    let sending = async {
        w.write_all(&data[..RESET_AFTER]).await?;
        w.flush().await?;
        tokio::time::sleep(IDLE).await;
        w.write_all(&data[RESET_AFTER..]).await?;
        w.shutdown().await
    };
    let mut got = Vec::new();
    let (s, g) = tokio::join!(sending, r.read_to_end(&mut got));
    s?;
    g?;
    Ok(got)
}

/// Echo until the peer's end, then end this side.
async fn echo(conn: Connection) -> io::Result<u64> {
    let (mut r, mut w) = tokio::io::split(conn);
    let n = tokio::io::copy(&mut r, &mut w).await?;
    w.shutdown().await?;
    Ok(n)
}

/// Read to the peer's end, then send `answer` and end this side.
async fn answer_after_end(mut conn: Connection, answer: &[u8]) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    conn.read_to_end(&mut got).await?;
    conn.write_all(answer).await?;
    conn.shutdown().await?;
    Ok(got)
}

/// Read [`RESET_AFTER`] bytes, then go away with a reset.
async fn read_then_reset(mut conn: Connection) -> io::Result<()> {
    let mut buf = vec![0u8; RESET_AFTER];
    conn.read_exact(&mut buf).await?;
    reset(conn);
    Ok(())
}

/// Drop a connection with a reset where the socket beneath is TCP (SO_LINGER 0), as a
/// crashing peer's kernel does; a unix socket has no reset: it is closed with bytes unread.
fn reset(conn: Connection) {
    let mut bottom = &conn;
    while let Some(b) = bottom.beneath() {
        bottom = b;
    }
    if let Some(tcp) = bottom.stream_ref::<tokio::net::TcpStream>() {
        let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
    }
    drop(conn);
}

fn ok<T>(what: &str, r: io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// A side that must fail: `Ok` when it did.
fn loud<T: std::fmt::Debug>(what: &str, r: io::Result<T>) -> Result<(), String> {
    match r {
        Err(_) => Ok(()),
        Ok(v) => Err(format!(
            "{what} ended cleanly ({v:?}) although its peer reset mid-transfer"
        )),
    }
}

async fn both_ends(
    fx: &Fixture,
    scenario: Scenario,
    server: Connection,
    client: Connection,
) -> Result<(), String> {
    let data = &fx.data[..];
    match scenario {
        Scenario::Upload => {
            let (s, c) = tokio::join!(send(server, &[]), send(client, data));
            let got = ok("server", s)?;
            let back = ok("client", c)?;
            same("the server received", &got, data)?;
            same("the client received", &back, &[])
        }
        Scenario::Download => {
            let (s, c) = tokio::join!(send(server, data), send(client, &[]));
            let back = ok("server", s)?;
            let got = ok("client", c)?;
            same("the client received", &got, data)?;
            same("the server received", &back, &[])
        }
        Scenario::Echo => {
            let (s, c) = tokio::join!(echo(server), send(client, data));
            ok("server", s)?;
            same("the client got back", &ok("client", c)?, data)
        }
        Scenario::HalfCloseClientFirst => {
            let (s, c) = tokio::join!(
                answer_after_end(server, &fx.second),
                send(client, &fx.first)
            );
            let req = ok("server", s)?;
            let ans = ok("client", c)?;
            same("the server received", &req, &fx.first)?;
            same("the client received the answer", &ans, &fx.second)
        }
        Scenario::HalfCloseServerFirst => {
            let (s, c) = tokio::join!(
                send(server, &fx.first),
                answer_after_end(client, &fx.second)
            );
            let ans = ok("server", s)?;
            let greeting = ok("client", c)?;
            same("the client received", &greeting, &fx.first)?;
            same("the server received the answer", &ans, &fx.second)
        }
        Scenario::ResetDuringUpload => {
            let (s, c) = tokio::join!(read_then_reset(server), send_total(client, data));
            ok("the resetting server", s)?;
            loud("the client", c)
        }
        Scenario::ResetDuringDownload => {
            let (s, c) = tokio::join!(send_total(server, data), read_then_reset(client));
            ok("the resetting client", c)?;
            loud("the server", s)
        }
        Scenario::StalledPeer => {
            let (done, stalled) = tokio::sync::oneshot::channel::<()>();
            let stall = async {
                let mut server = server;
                server.write_all(&data[..RESET_AFTER]).await?;
                server.flush().await?;
                // Neither read nor write (no pong either) until the client's side is over.
                let _ = stalled.await;
                drop(server);
                io::Result::Ok(())
            };
            let watch = async {
                let r = send(client, &[]).await;
                let _ = done.send(());
                r
            };
            let (s, c) = tokio::join!(stall, watch);
            ok("the stalling server", s)?;
            loud("the client", c)
        }
        Scenario::IdlePeer => {
            let (s, c) = tokio::join!(send_pausing(server, data), send(client, &[]));
            ok("server", s)?;
            same("the client received", &ok("client", c)?, data)
        }
    }
}

/// The client end against a program; what the program received is in `out`.
async fn with_program(
    fx: &Fixture,
    scenario: Scenario,
    client: Connection,
    out: &Path,
) -> Result<(), String> {
    let data = &fx.data[..];
    match scenario {
        Scenario::Upload => {
            let back = ok("client", send(client, data).await)?;
            same("the client received", &back, &[])?;
            same("the program received", &read_file(out), data)
        }
        Scenario::Download | Scenario::IdlePeer => same(
            "the client received",
            &ok("client", send(client, &[]).await)?,
            data,
        ),
        Scenario::Echo => same(
            "the client got back",
            &ok("client", send(client, data).await)?,
            data,
        ),
        Scenario::HalfCloseClientFirst => {
            let ans = ok("client", send(client, &fx.first).await)?;
            same("the client received the answer", &ans, &fx.second)?;
            same("the program received", &read_file(out), &fx.first)
        }
        Scenario::HalfCloseServerFirst => {
            let greeting = ok("client", answer_after_end(client, &fx.second).await)?;
            same("the client received", &greeting, &fx.first)?;
            // The program's exit ended the stream, so its file is complete.
            same(
                "the program received the answer",
                &read_file(out),
                &fx.second,
            )
        }
        Scenario::ResetDuringUpload => loud("the client", send_total(client, data).await),
        Scenario::ResetDuringDownload | Scenario::StalledPeer => {
            Err("no library cell: the far end is a program".into())
        }
    }
}
