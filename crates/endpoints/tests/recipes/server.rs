//! Recipes 1, 5, 6 and 7: a server on every `--listen` description, drained on SIGTERM; the
//! same program behind haproxy, on a certbot tree, and under systemd.

// ANCHOR: recipe
use std::time::Duration;

use clap::Parser;
use endpoints::ServerDescription;
use endpoints::service::ServerService;
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{SignalKind, signal};

/// Echo every connection, on every description given.
#[derive(Parser)]
struct Args {
    /// Where to listen (repeat for several): tcp:8080, unix:/run/app.sock, systemd:INET:0...
    #[arg(long, required = true)]
    listen: Vec<ServerDescription>,
    /// How long open connections may finish after SIGTERM, in seconds.
    #[arg(long, default_value_t = 10)]
    drain: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Sockets passed by systemd (or a handover): taken before any thread starts.
    endpoints::systemd::init()?;
    let args = Args::parse();
    tokio::runtime::Runtime::new()?.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let server = ServerService::start_with_shutdown(args.listen, |conn, shutdown| async move {
        // Behind `haproxy:`, the peer is the client the PROXY header names.
        eprintln!("connection from {}", conn.peer_addr());
        let (mut r, mut w) = tokio::io::split(conn);
        tokio::select! {
            _ = tokio::io::copy(&mut r, &mut w) => {}
            // SIGTERM: close now (counted as drained) rather than be cut at the deadline.
            () = shutdown.signalled() => {}
        }
        let _ = w.shutdown().await;
    })
    .await?;
    for l in server.listening() {
        eprintln!("listening on {l}");
    }
    endpoints::systemd::notify_ready()?; // Type=notify; nothing outside systemd
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let report = server.shutdown(Duration::from_secs(args.drain)).await;
    eprintln!(
        "stopped: {} drained, {} aborted",
        report.drained, report.aborted
    );
    Ok(())
}
// ANCHOR_END: recipe

/// The recipe's `main`, for the harness (`RECIPE=name`).
pub(crate) fn run() -> Result<(), Box<dyn std::error::Error>> {
    main()
}
