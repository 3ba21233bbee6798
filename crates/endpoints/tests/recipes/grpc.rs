//! Recipe 3: a tonic (gRPC) server on a unix socket, stopped by SIGTERM.

// ANCHOR: recipe
use clap::Parser;
use endpoints::ServerDescription;
use endpoints::service::tonic_incoming;
use tokio::signal::unix::{SignalKind, signal};
use tonic::transport::Server;

/// Serve gRPC (here the standard health service) on any description.
#[derive(Parser)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "unix:/run/app/grpc.sock:mode=660")]
    listen: ServerDescription,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let listener = args.listen.endpoint().listen().await?;
    eprintln!("listening on {listener}");
    let (health, service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let mut term = signal(SignalKind::terminate())?;
    Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(tonic_incoming(listener), async move {
            term.recv().await;
        })
        .await?;
    eprintln!("stopped");
    Ok(())
}
// ANCHOR_END: recipe

/// The recipe's `main`, for the harness (`RECIPE=name`).
pub(crate) fn run() -> Result<(), Box<dyn std::error::Error>> {
    main()
}
