//! Recipe 9: a WebSocket tunnel, both ends the same program with other descriptions.

// ANCHOR: recipe
use std::time::Duration;

use clap::Parser;
use endpoints::service::ServerService;
use endpoints::{ClientDescription, ServerDescription};
use tokio::signal::unix::{SignalKind, signal};

/// Relay every connection accepted on `--listen` to `--connect`, both ways.
#[derive(Parser)]
struct Args {
    /// Where clients come in.
    #[arg(long)]
    listen: ServerDescription,
    /// Where each one is carried to.
    #[arg(long)]
    connect: ClientDescription,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let target = args.connect.endpoint();
    let server = ServerService::start(args.listen, move |mut inbound| {
        let target = target.clone();
        async move {
            match target.connect().await {
                Ok(mut outbound) => {
                    if let Err(e) = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await
                    {
                        eprintln!("{}: {e}", inbound.peer_addr());
                    }
                }
                Err(e) => eprintln!("cannot reach {target}: {e}"),
            }
        }
    })
    .await?;
    for l in server.listening() {
        eprintln!("listening on {l}");
    }
    signal(SignalKind::terminate())?.recv().await;
    server.shutdown(Duration::from_secs(10)).await;
    Ok(())
}
// ANCHOR_END: recipe

/// The recipe's `main`, for the harness (`RECIPE=name`).
pub(crate) fn run() -> Result<(), Box<dyn std::error::Error>> {
    main()
}
