//! An echo server on any description: `cargo run --example echo_server --features clap --
//! --listen tcp:7000` (or `unix:/tmp/echo.sock`, `haproxy:tcp:7000`, `ssl:7443:privateKey=...`).
//! Ctrl-C stops it gracefully.

use std::time::Duration;

use clap::Parser;
use endpoints::ServerDescription;
use endpoints::service::ServerService;

/// Echo every connection.
#[derive(Parser)]
struct Args {
    /// Where to listen, as an endpoint description.
    #[arg(long, default_value = "tcp:7000:interface=127.0.0.1")]
    listen: Vec<ServerDescription>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let descriptions: Vec<&str> = args.listen.iter().map(ServerDescription::as_str).collect();
    let server = ServerService::start(&descriptions, |conn| async move {
        let peer = conn.peer_addr().clone();
        let (mut r, mut w) = tokio::io::split(conn);
        let n = tokio::io::copy(&mut r, &mut w).await.unwrap_or(0);
        eprintln!("{peer}: echoed {n} bytes");
    })
    .await?;
    for l in server.listening() {
        eprintln!("listening on {l}");
    }
    tokio::signal::ctrl_c().await?;
    let report = server.shutdown(Duration::from_secs(5)).await;
    eprintln!(
        "stopped: {} connections drained, {} closed",
        report.drained, report.aborted
    );
    Ok(())
}
