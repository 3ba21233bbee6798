//! [`Shutdown`]: the signal a connection handler or a client protocol watches to close
//! cleanly before the service's deadline.

use std::future::Future;

use tokio::sync::watch;

/// Told when the service that runs this connection begins to stop: close cleanly (finish
/// the current request, send a goodbye, shut the write side down) and return. Handlers that
/// still run at the service's deadline are aborted.
///
/// Cloneable; each clone sees the same signal. A service that is dropped counts as
/// signalled.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A sender and the signal it controls (`send(true)` signals).
    pub(crate) fn channel() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    pub(crate) fn from_receiver(rx: watch::Receiver<bool>) -> Self {
        Self(rx)
    }

    /// Whether shutdown has begun.
    pub fn is_signalled(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Completes when shutdown begins (at once if it has). For `tokio::select!`.
    pub fn signalled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            // An error means the service is gone: that is a shutdown too.
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}
