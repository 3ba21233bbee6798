//! An axum app on any description: `cargo run --example axum_app --features clap,axum --
//! --listen unix:/tmp/app.sock` then `curl --unix-socket /tmp/app.sock http://x/`.

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use clap::Parser;
use endpoints::ServerDescription;
use endpoints::service::{AxumListener, PeerAddr};

/// Serve a small HTTP app.
#[derive(Parser)]
struct Args {
    /// Where to listen, as an endpoint description.
    #[arg(long, default_value = "tcp:8080:interface=127.0.0.1")]
    listen: ServerDescription,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let listener = args.listen.build()?.listen().await?;
    eprintln!("listening on {listener}");
    let app = Router::new().route(
        "/",
        get(|ConnectInfo(peer): ConnectInfo<PeerAddr>| async move { format!("hello, {peer}\n") }),
    );
    axum::serve(
        AxumListener::from(listener),
        app.into_make_service_with_connect_info::<PeerAddr>(),
    )
    .await?;
    Ok(())
}
