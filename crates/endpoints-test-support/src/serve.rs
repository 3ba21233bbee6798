//! Listening on a description in a test, and an echo server on any listener.

use endpoints_core::Listener;
use endpoints_core::registry::build_server;

/// Listen on `desc` with whatever transports the test binary links; panics with the error.
pub async fn listen(desc: &str) -> Box<dyn Listener> {
    build_server(&desc.parse().unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"))
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The port of an IP listener.
pub fn port_of(l: &dyn Listener) -> u16 {
    l.local_addr()
        .expect("bound")
        .ip()
        .map(|a| a.port())
        .expect("an IP listener")
}

/// Echo every connection `listener` accepts, each in a task of its own, until it fails.
pub fn serve_echo(mut listener: Box<dyn Listener>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(conn) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(conn);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    })
}
