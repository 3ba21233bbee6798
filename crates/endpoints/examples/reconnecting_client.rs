//! A client that keeps a connection up across server restarts: `cargo run --example
//! reconnecting_client --features clap -- --connect tcp:localhost:7000`. Stop the server and
//! start it again: the client reconnects with Twisted's backoff (1 s, x1.5, at most 60 s).

use std::time::Duration;

use clap::Parser;
use endpoints::ClientDescription;
use endpoints::service::{Backoff, ClientService};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Keep one connection; say hello on each new one.
#[derive(Parser)]
struct Args {
    /// Where to connect, as an endpoint description.
    #[arg(long)]
    connect: ClientDescription,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let service = ClientService::new(args.connect.build()?, |mut conn| {
        let peer = conn.peer_addr().to_string();
        (peer, async move {
            conn.write_all(b"hello again\n").await?;
            let mut buf = [0u8; 4096];
            while conn.read(&mut buf).await? > 0 {}
            std::io::Result::Ok(()) // an error here is the reason `on_lost` is given
        })
    })
    .retry(Backoff::new())
    .on_connected(|c| eprintln!("connected to {} (attempt {})", c.peer, c.attempt))
    .on_lost(|l| {
        eprintln!(
            "lost after {:?}: {}; reconnecting in {:?}",
            l.connected_for, l.reason, l.next_delay
        )
    })
    // The first failure of a series is also logged at WARN (with a tracing subscriber).
    .on_failure(|f| {
        eprintln!(
            "attempt {} failed: {}; next in {:?}",
            f.attempt, f.error, f.next_delay
        )
    });
    service.start();
    let peer = service.when_connected(None).await?;
    eprintln!("first connection: {peer}");
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    service.stop().await;
    Ok(())
}
