//! An axum app on any descriptions: `cargo run --example axum_app --features clap,axum --
//! --listen unix:/tmp/app.sock --listen tcp:8080` then `curl --unix-socket /tmp/app.sock
//! http://x/`. Each handler sees the whole connection (peer, local address, PROXY header,
//! TLS details, unix peer credentials) through `ConnectInfo<ConnectionInfo>`. SIGTERM or
//! Ctrl-C stops it: idle connections are closed at once, requests in flight get up to 10 s.

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use clap::Parser;
use endpoints::ServerDescription;
use std::time::Duration;

use endpoints::service::{ConnectionInfo, serve_axum_with_shutdown};
use tokio::signal::unix::{SignalKind, signal};

/// Serve a small HTTP app.
#[derive(Parser)]
struct Args {
    /// Where to listen, as endpoint descriptions.
    #[arg(long, default_value = "tcp:8080:interface=127.0.0.1")]
    listen: Vec<ServerDescription>,
}

async fn hello(ConnectInfo(c): ConnectInfo<ConnectionInfo>) -> String {
    format!(
        "hello, {} (you reached {}; {} connection details)\n",
        c.peer,
        c.local,
        c.extensions.len()
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (mut term, mut int) = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
    );
    let mut listeners = Vec::new();
    for d in &args.listen {
        let listener = d.endpoint().listen().await?;
        eprintln!("listening on {listener}");
        listeners.push(listener);
    }
    let stop = async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    };
    let app = Router::new().route("/", get(hello));
    let report = serve_axum_with_shutdown(listeners, app, stop, Duration::from_secs(10)).await;
    eprintln!(
        "stopped: {} drained, {} aborted",
        report.drained, report.aborted
    );
    Ok(())
}
