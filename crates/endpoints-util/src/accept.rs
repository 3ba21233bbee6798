//! The accept-loop policy every listener shares: never spin, never go deaf.
//!
//! * Errors that concern one connection (the client reset before it was accepted, a pending
//!   network error reported by `accept(2)`, a netfilter `EPERM`) are skipped at once.
//! * Resource errors (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) are waited out: 5 ms, doubling
//!   to 1 s, logged once per episode; accepting resumes by itself when resources free up.
//! * Anything else ends the listener: it is returned to the caller.

use std::fmt;
use std::io;
use std::time::Duration;

/// The first wait after a resource error.
pub const MIN_BACKOFF: Duration = Duration::from_millis(5);
/// The longest wait between tries while resources stay exhausted.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How an `accept` error should be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptErrorClass {
    /// About one connection only: skip it and accept the next at once.
    Connection,
    /// The process or system is out of a resource: wait, then try again.
    Resource,
    /// The listener cannot go on.
    Fatal,
}

/// Classify an error returned by `accept`.
pub fn classify(e: &io::Error) -> AcceptErrorClass {
    #[cfg(unix)]
    if let Some(code) = e.raw_os_error() {
        match code {
            libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                return AcceptErrorClass::Resource;
            }
            libc::ECONNABORTED
            | libc::ECONNRESET
            | libc::EPERM
            | libc::EINTR
            | libc::EAGAIN
            | libc::EPROTO
            | libc::ENOPROTOOPT
            | libc::ENETDOWN
            | libc::ENETUNREACH
            | libc::EHOSTDOWN
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ETIMEDOUT => return AcceptErrorClass::Connection,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            libc::ENONET => return AcceptErrorClass::Connection,
            _ => {}
        }
    }
    match e.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionRefused
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock
        | io::ErrorKind::TimedOut => AcceptErrorClass::Connection,
        io::ErrorKind::OutOfMemory => AcceptErrorClass::Resource,
        _ => AcceptErrorClass::Fatal,
    }
}

/// Per-listener state of the policy. Keep one in the listener (not in the `accept` future,
/// so that a cancelled `accept` keeps its place in the backoff).
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    next_delay: Option<Duration>,
    episode_errors: u64,
}

impl AcceptBackoff {
    /// A fresh policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handle an `accept` error on `listener`: returns `Ok(())` when accepting should be tried
    /// again (after waiting, for resource errors), or the error when it is fatal.
    pub async fn handle(
        &mut self,
        e: io::Error,
        listener: &(dyn fmt::Display + Sync),
    ) -> io::Result<()> {
        match classify(&e) {
            AcceptErrorClass::Connection => {
                tracing::debug!(%listener, error = %e, "skipped a connection that failed before it was accepted");
                Ok(())
            }
            AcceptErrorClass::Resource => {
                let delay = self.next_delay.unwrap_or(MIN_BACKOFF);
                if self.episode_errors == 0 {
                    tracing::warn!(%listener, error = %e, "cannot accept: out of resources; backing off until they free up");
                }
                self.episode_errors += 1;
                self.next_delay = Some((delay * 2).min(MAX_BACKOFF));
                tokio::time::sleep(delay).await;
                Ok(())
            }
            AcceptErrorClass::Fatal => Err(e),
        }
    }

    /// Record a successful accept (ends a backoff episode).
    pub fn success(&mut self) {
        if self.episode_errors > 0 {
            tracing::info!(
                errors = self.episode_errors,
                "accepting again after resource exhaustion"
            );
            self.episode_errors = 0;
            self.next_delay = None;
        }
    }

    /// Whether the listener is currently in a backoff episode.
    pub fn in_episode(&self) -> bool {
        self.episode_errors > 0
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(classify(&os(libc::EMFILE)), AcceptErrorClass::Resource);
        assert_eq!(classify(&os(libc::ENFILE)), AcceptErrorClass::Resource);
        assert_eq!(classify(&os(libc::ENOBUFS)), AcceptErrorClass::Resource);
        assert_eq!(classify(&os(libc::ENOMEM)), AcceptErrorClass::Resource);
        assert_eq!(
            classify(&os(libc::ECONNABORTED)),
            AcceptErrorClass::Connection
        );
        assert_eq!(classify(&os(libc::EPERM)), AcceptErrorClass::Connection);
        assert_eq!(classify(&os(libc::EPROTO)), AcceptErrorClass::Connection);
        assert_eq!(
            classify(&os(libc::ENETUNREACH)),
            AcceptErrorClass::Connection
        );
        assert_eq!(classify(&os(libc::EBADF)), AcceptErrorClass::Fatal);
        assert_eq!(classify(&os(libc::EINVAL)), AcceptErrorClass::Fatal);
    }

    #[tokio::test(start_paused = true)]
    async fn resource_errors_back_off_exponentially_to_a_cap() {
        let mut b = AcceptBackoff::new();
        let mut waits = Vec::new();
        for _ in 0..10 {
            let t = tokio::time::Instant::now();
            b.handle(io::Error::from_raw_os_error(libc::EMFILE), &"tcp:0")
                .await
                .expect("retry");
            waits.push(t.elapsed().as_millis());
        }
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert!(b.in_episode());
        b.success();
        assert!(!b.in_episode());
        let t = tokio::time::Instant::now();
        b.handle(io::Error::from_raw_os_error(libc::ENFILE), &"tcp:0")
            .await
            .expect("retry");
        assert_eq!(
            t.elapsed().as_millis(),
            5,
            "a new episode starts small again"
        );
    }

    /// Counts events at WARN level or above.
    struct CountWarnings(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl tracing::Subscriber for CountWarnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() <= tracing::Level::WARN {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test(start_paused = true)]
    async fn resource_exhaustion_warns_once_per_episode() {
        let warnings = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let _guard = tracing::subscriber::set_default(CountWarnings(warnings.clone()));
        let mut b = AcceptBackoff::new();
        for _ in 0..50 {
            b.handle(io::Error::from_raw_os_error(libc::EMFILE), &"tcp:0")
                .await
                .expect("retry");
        }
        assert_eq!(
            warnings.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one warning for one episode"
        );
        b.success();
        b.handle(io::Error::from_raw_os_error(libc::ENFILE), &"tcp:0")
            .await
            .expect("retry");
        assert_eq!(
            warnings.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "a new episode warns again"
        );
        for _ in 0..20 {
            b.handle(io::Error::from_raw_os_error(libc::ECONNABORTED), &"tcp:0")
                .await
                .expect("skip");
        }
        assert_eq!(
            warnings.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "per-connection errors never warn"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn connection_errors_do_not_wait_and_fatal_errors_return() {
        let mut b = AcceptBackoff::new();
        let t = tokio::time::Instant::now();
        b.handle(io::Error::from_raw_os_error(libc::ECONNABORTED), &"x")
            .await
            .expect("skip");
        assert_eq!(t.elapsed(), Duration::ZERO);
        let e = b
            .handle(io::Error::from_raw_os_error(libc::EBADF), &"x")
            .await
            .expect_err("fatal");
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    }
}
