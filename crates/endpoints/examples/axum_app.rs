//! An axum app on any descriptions: `cargo run --example axum_app --features clap,axum --
//! --listen unix:/tmp/app.sock --listen tcp:8080` then `curl --unix-socket /tmp/app.sock
//! http://x/`. Each handler sees the whole connection (peer, local address, PROXY header,
//! TLS details, unix peer credentials) through `ConnectInfo<ConnectionInfo>`.

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use clap::Parser;
use endpoints::ServerDescription;
use endpoints::service::{ConnectionInfo, serve_axum};

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
    let mut listeners = Vec::new();
    for d in &args.listen {
        let listener = d.endpoint().listen().await?;
        eprintln!("listening on {listener}");
        listeners.push(listener);
    }
    serve_axum(listeners, Router::new().route("/", get(hello))).await?;
    Ok(())
}
