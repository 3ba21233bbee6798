//! Recipe 8: zero-downtime restart: SIGHUP hands the listeners to a new process (the binary
//! on disk, same arguments), which serves before this one stops accepting and drains.

// ANCHOR: recipe
use std::time::Duration;

use clap::Parser;
use endpoints::ServerDescription;
use endpoints::service::ServerService;
use endpoints::util::handover::{HandoverOptions, signal_ready};
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{SignalKind, signal};

/// Greet with this process's pid, then echo; `kill -HUP` restarts without refusing anyone.
#[derive(Parser)]
struct Args {
    /// Where to listen (repeat for several).
    #[arg(long, required = true)]
    listen: Vec<ServerDescription>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The predecessor's listeners (or systemd's), taken before any thread starts.
    endpoints::systemd::init()?;
    let args = Args::parse();
    tokio::runtime::Runtime::new()?.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    // Listening adopts the predecessor's sockets by description, or binds.
    let mut server = ServerService::start(args.listen, |conn| async move {
        let (mut r, mut w) = tokio::io::split(conn);
        let hello = format!("served by {}\n", std::process::id());
        if w.write_all(hello.as_bytes()).await.is_ok() {
            let _ = tokio::io::copy(&mut r, &mut w).await;
        }
    })
    .await?;
    for l in server.listening() {
        eprintln!("listening on {l}");
    }
    signal_ready()?; // the predecessor may stop accepting now (nothing if there is none)
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let options = HandoverOptions::same_binary()?;
                match server.hand_over(&options, Duration::from_secs(30)).await {
                    Ok((pid, report)) => {
                        eprintln!("handed over to {pid}; {} drained, {} aborted", report.drained, report.aborted);
                        return Ok(());
                    }
                    Err((still_serving, e)) => {
                        eprintln!("handover failed, still serving: {e}");
                        server = still_serving;
                    }
                }
            }
            _ = term.recv() => {
                server.shutdown(Duration::from_secs(10)).await;
                return Ok(());
            }
        }
    }
}
// ANCHOR_END: recipe

/// The recipe's `main`, for the harness (`RECIPE=name`).
pub(crate) fn run() -> Result<(), Box<dyn std::error::Error>> {
    main()
}
