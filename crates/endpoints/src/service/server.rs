//! [`ServerService`]: listen on one or more descriptions, run a handler per connection, shut
//! down gracefully (Twisted's `strports.service`).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use endpoints_core::{Connection, Listener};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Error;

/// What a graceful shutdown did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections open when shutdown began that finished before the deadline.
    pub drained: usize,
    /// Connections still open at the deadline, closed.
    pub aborted: usize,
}

/// Listening on every description given to [`start`](Self::start), with a handler task per
/// connection.
#[derive(Debug)]
pub struct ServerService {
    stop: watch::Sender<bool>,
    acceptors: Vec<tokio::task::JoinHandle<()>>,
    connections: Arc<Mutex<JoinSet<()>>>,
    listening: Vec<String>,
}

impl ServerService {
    /// Listen on every description (errors come back here, not only in a log: if one fails,
    /// those already listening are closed), then accept in the background and run
    /// `handler` on each connection. Needs a tokio runtime.
    pub async fn start<F, Fut>(descriptions: &[&str], handler: F) -> Result<Self, Error>
    where
        F: Fn(Connection) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut listeners: Vec<Box<dyn Listener>> = Vec::new();
        for d in descriptions {
            match crate::listen(d).await {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    for l in listeners {
                        let _ = l.close().await;
                    }
                    return Err(e);
                }
            }
        }
        let listening = listeners.iter().map(ToString::to_string).collect();
        let (stop, _) = watch::channel(false);
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let handler = Arc::new(handler);
        let acceptors = listeners
            .into_iter()
            .map(|mut l| {
                let (mut stopped, connections, handler) = (stop.subscribe(), connections.clone(), handler.clone());
                tokio::spawn(async move {
                    let name = l.to_string();
                    loop {
                        tokio::select! {
                            accepted = l.accept() => match accepted {
                                Ok(conn) => {
                                    // One span per connection, with the endpoint and the peer.
                                    let span = tracing::debug_span!("connection", listener = %name, peer = %conn.peer_addr());
                                    let work = tracing::Instrument::instrument(handler(conn), span);
                                    let mut set = connections.lock().unwrap_or_else(|p| p.into_inner());
                                    while set.try_join_next().is_some() {}
                                    set.spawn(work);
                                }
                                Err(e) => {
                                    tracing::error!(listener = %l, error = %e, "listener failed; it stops accepting");
                                    break;
                                }
                            },
                            _ = stopped.changed() => break,
                        }
                    }
                    let name = l.to_string();
                    if let Err(e) = l.close().await {
                        tracing::warn!(listener = %name, error = %e, "close failed");
                    }
                })
            })
            .collect();
        Ok(Self {
            stop,
            acceptors,
            connections,
            listening,
        })
    }

    /// What is listening: each listener's description (with the real ports).
    pub fn listening(&self) -> &[String] {
        &self.listening
    }

    /// Stop accepting (every listener is closed before this goes on), let open connections
    /// finish for up to `deadline`, then close the rest.
    pub async fn shutdown(self, deadline: Duration) -> ShutdownReport {
        let _ = self.stop.send(true);
        for a in self.acceptors {
            let _ = a.await;
        }
        let mut set =
            std::mem::take(&mut *self.connections.lock().unwrap_or_else(|p| p.into_inner()));
        while set.try_join_next().is_some() {}
        let mut report = ShutdownReport::default();
        let drain = async {
            while set.join_next().await.is_some() {
                report.drained += 1;
            }
        };
        if tokio::time::timeout(deadline, drain).await.is_err() {
            report.aborted = set.len();
            set.shutdown().await;
        }
        report
    }
}
