//! Recipe 2: axum on any description, stopped by SIGTERM with axum's `with_graceful_shutdown`.

// ANCHOR: recipe
use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use clap::Parser;
use endpoints::ServerDescription;
use endpoints::service::{AxumListener, ConnectionInfo};
use tokio::signal::unix::{SignalKind, signal};

/// Serve a small HTTP app.
#[derive(Parser)]
struct Args {
    /// Where to listen: tcp:8080, unix:/run/app.sock, haproxy:tcp:8080, tls:/etc/letsencrypt/live:443...
    #[arg(long, default_value = "tcp:8080")]
    listen: ServerDescription,
}

async fn hello(ConnectInfo(c): ConnectInfo<ConnectionInfo>) -> String {
    format!("hello {}\n", c.peer)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let listener = args.listen.endpoint().listen().await?;
    eprintln!("listening on {listener}");
    let app = Router::new().route("/", get(hello));
    let mut term = signal(SignalKind::terminate())?;
    axum::serve(
        AxumListener::from(listener),
        app.into_make_service_with_connect_info::<ConnectionInfo>(),
    )
    .with_graceful_shutdown(async move {
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
