//! A tour with no setup: `cargo run --example quickstart`.
//!
//! Starts echo servers from descriptions, connects to them with clients built from
//! descriptions (an IP literal, a host name through happy eyeballs, IPv6), and shows what a
//! mistake in a description looks like.

use std::error::Error;
use std::time::Instant;

use endpoints::{Connection, Listener};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    println!("Endpoint types in this build:");
    for p in endpoints::types() {
        let params: Vec<&str> = p.params().iter().map(|q| q.name).collect();
        println!(
            "  {:<9} {:<6} {} [{}]",
            p.prefix(),
            p.side().as_str(),
            p.summary(),
            params.join(", ")
        );
    }

    let v4 = start_echo("tcp:0:interface=127.0.0.1").await?;
    let v6 = start_echo("tcp6:0:interface=[::1]:v6only=1").await?;

    println!("\nClients, each built from one description:");
    for description in [
        format!("tcp:127.0.0.1:{v4}"),
        format!("tcp:localhost:{v4}"),
        format!("hostname:host=localhost:port={v4}:attemptDelay=0.1"),
        format!("tcp:[::1]:{v6}"),
    ] {
        let started = Instant::now();
        let conn = endpoints::connect(&description).await?;
        let peer = conn.peer_addr().clone();
        let reply = round_trip(conn, "hello through endpoints").await?;
        println!(
            "  {description:<46} -> {peer:<18} echoed {reply:?} in {:.2?}",
            started.elapsed()
        );
    }

    println!("\nA refused connection names the endpoint and every address tried:");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    if let Err(e) = endpoints::connect(&format!("tcp:127.0.0.1:{closed}")).await {
        println!("  {e}");
    }

    println!("\nMistakes in descriptions are typed errors with a span and a suggestion:");
    for bad in [
        "tcp:prot=80",
        "8080",
        "tcp:70000",
        "tpc:80",
        "tcp6:443:interface=::1",
    ] {
        match endpoints::server(bad) {
            Ok(e) => println!("  `{bad}` unexpectedly built `{e}`"),
            Err(e) => println!("\n  [{}] {}", e.kind(), e.to_string().replace('\n', "\n  ")),
        }
    }
    Ok(())
}

/// Listen on `description` and echo lines on every connection; returns the bound port.
async fn start_echo(description: &str) -> Result<u16, Box<dyn Error>> {
    let mut listener: Box<dyn Listener> = endpoints::listen(description).await?;
    println!("\nlistening on {listener}\n  (asked for `{description}`)");
    let port = listener.local_addr()?.ip().map_or(0, |a| a.port());
    tokio::spawn(async move {
        while let Ok(conn) = listener.accept().await {
            tokio::spawn(async move {
                let (rd, mut wr) = tokio::io::split(conn);
                let mut lines = BufReader::new(rd).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if wr.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(port)
}

async fn round_trip(conn: Connection, text: &str) -> std::io::Result<String> {
    let (rd, mut wr) = tokio::io::split(conn);
    wr.write_all(format!("{text}\n").as_bytes()).await?;
    let mut line = String::new();
    BufReader::new(rd).read_line(&mut line).await?;
    Ok(line.trim_end().to_owned())
}
