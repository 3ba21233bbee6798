//! Send stdin to a server and print what comes back: `cargo run --example client --features
//! clap -- --connect tcp:localhost:7000 < file` (or `tls:example.com:443`, `unix:/tmp/echo.sock`).

use clap::Parser;
use endpoints::ClientDescription;
use tokio::io::AsyncWriteExt;

/// Connect and copy stdin to the connection and the connection to stdout.
#[derive(Parser)]
struct Args {
    /// Where to connect, as an endpoint description.
    #[arg(long)]
    connect: ClientDescription,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let conn = args.connect.build()?.connect().await?;
    eprintln!("connected to {}", conn.peer_addr());
    let (mut r, mut w) = tokio::io::split(conn);
    let send = async {
        tokio::io::copy(&mut tokio::io::stdin(), &mut w).await?;
        w.shutdown().await
    };
    let mut stdout = tokio::io::stdout();
    let receive = tokio::io::copy(&mut r, &mut stdout);
    let (sent, received) = tokio::join!(send, receive);
    sent?;
    received?;
    Ok(())
}
