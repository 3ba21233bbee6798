//! An echo server on any description: `cargo run --example echo_server --features clap --
//! --listen tcp:7000` (or `unix:/tmp/echo.sock`, `haproxy:tcp:7000`, `ssl:7443:privateKey=...`).
//! Ctrl-C stops it gracefully.

use std::time::Duration;

use clap::Parser;
use endpoints::ServerDescription;
use endpoints::service::ServerService;
use tokio::io::AsyncWriteExt;

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
    // The checked descriptions go in as they are: nothing is parsed or read twice.
    let server = ServerService::start_with_shutdown(args.listen, |conn, shutdown| async move {
        let peer = conn.peer_addr().clone();
        let (mut r, mut w) = tokio::io::split(conn);
        tokio::select! {
            n = tokio::io::copy(&mut r, &mut w) => eprintln!("{peer}: echoed {} bytes", n.unwrap_or(0)),
            // Ctrl-C: close this connection now instead of at the deadline.
            () = shutdown.signalled() => {
                let _ = w.shutdown().await;
                eprintln!("{peer}: closed for shutdown");
            }
        }
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
