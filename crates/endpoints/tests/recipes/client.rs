//! Recipe 4: a client that keeps its connection up, with connected and lost hooks.

// ANCHOR: recipe
use clap::Parser;
use endpoints::ClientDescription;
use endpoints::service::{Backoff, ClientService};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::signal::unix::{SignalKind, signal};

/// Keep one connection; say hello on each new one and print what comes back.
#[derive(Parser)]
struct Args {
    /// Where to connect: tcp:db.internal:5432, tls:api.example:443, unix:/run/app.sock...
    #[arg(long)]
    connect: ClientDescription,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let service = ClientService::new(args.connect.build()?, |conn| {
        let protocol = async move {
            let (r, mut w) = tokio::io::split(conn);
            w.write_all(b"hello\n").await?;
            let mut lines = BufReader::new(r).lines();
            while let Some(line) = lines.next_line().await? {
                println!("{line}");
            }
            std::io::Result::Ok(()) // an `Err` here is the reason `on_lost` sees
        };
        ((), protocol)
    })
    // Twisted's backoff: 1 s, x1.5, at most 60 s, with jitter; from the start after a loss.
    .retry(Backoff::new())
    .on_connected(|c| eprintln!("connected to {} (attempt {})", c.peer, c.attempt))
    .on_lost(|l| eprintln!("lost after {:?}: {}", l.connected_for, l.reason))
    .on_failure(|f| {
        eprintln!(
            "attempt {} failed: {}; next in {:?}",
            f.attempt, f.error, f.next_delay
        )
    });
    service.start();
    signal(SignalKind::terminate())?.recv().await;
    service.stop().await; // closes the connection; on_lost says "stopped"
    Ok(())
}
// ANCHOR_END: recipe

/// The recipe's `main`, for the harness (`RECIPE=name`).
pub(crate) fn run() -> Result<(), Box<dyn std::error::Error>> {
    main()
}
