//! The `metrics` group: what recording costs. The accept-and-close rate of a `ServerService`
//! on a `tcp:` listener (it records accepted, open and ended for every connection), with no
//! recorder installed (baseline) and with one (ours), interleaved in one run: the ratio is
//! the cost of recording; with no recorder the library's handles are empty and recording is
//! a branch. The recorder is an in-memory one with an atomic per counter and gauge, as a
//! Prometheus exporter's.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use endpoints::service::ServerService;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tokio::sync::oneshot;

use crate::{Config, Outcome, interleave, reset_connect, row};

/// Counters and gauges as atomics, kept per key (registration takes a lock, recording not).
#[derive(Default)]
struct Atomics(Mutex<Vec<(Key, Arc<AtomicU64>)>>);

impl Atomics {
    fn get(&self, key: &Key) -> Arc<AtomicU64> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, a)) = all.iter().find(|(k, _)| k == key) {
            return a.clone();
        }
        let a = Arc::new(AtomicU64::new(0));
        all.push((key.clone(), a.clone()));
        a
    }
}

impl Recorder for Atomics {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.get(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.get(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

pub(crate) async fn figures(cfg: &Config) -> Outcome<()> {
    let recorder: &'static Atomics = Box::leak(Box::default());
    let (base, ours) = interleave(
        cfg.runs,
        || accept_rate(None, cfg),
        || accept_rate(Some(recorder), cfg),
    )
    .await?;
    row(
        "accept-and-close rate, `ServerService` on `tcp:`, a recorder installed vs none (conn/s)",
        base,
        ours,
        "≥ 0.95",
    )?;
    let accepted: u64 = recorder
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(k, _)| k.name() == endpoints::util::metrics::CONNECTIONS_ACCEPTED)
        .map(|(_, a)| a.load(Ordering::Relaxed))
        .sum();
    if accepted == 0 {
        return Err("the recorder recorded no connection".into());
    }
    Ok(())
}

/// Connections per second accepted (and closed by the handler) by a `ServerService` started
/// with `recorder` installed, or none.
async fn accept_rate(recorder: Option<&'static Atomics>, cfg: &Config) -> Outcome<f64> {
    let target = cfg.accepts;
    let (done_tx, done_rx) = oneshot::channel::<Instant>();
    let done_tx = Arc::new(Mutex::new(Some(done_tx)));
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = accepted.clone();
    let handler = move |conn| {
        drop(conn);
        if counted.fetch_add(1, Ordering::Relaxed) + 1 == target
            && let Some(tx) = done_tx.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            let _ = tx.send(Instant::now());
        }
        async {}
    };
    // The service registers its handles when it starts: with the recorder, if installed
    // for this thread then (the handles then record from any thread).
    let started = match recorder {
        Some(r) => {
            let _installed = metrics::set_default_local_recorder(r);
            ServerService::start("tcp:0:interface=127.0.0.1", handler).await
        }
        None => ServerService::start("tcp:0:interface=127.0.0.1", handler).await,
    };
    let service = started.map_err(|e| format!("listen: {e}"))?;
    let addr: std::net::SocketAddr = service.listening()[0]
        .split_once("port=")
        .and_then(|(_, rest)| rest.split(':').next())
        .and_then(|p| p.parse::<u16>().ok())
        .map(|p| ([127, 0, 0, 1], p).into())
        .ok_or_else(|| format!("no port in {:?}", service.listening()))?;
    let started = Instant::now();
    let issued = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..cfg.concurrency)
        .map(|_| {
            let issued = issued.clone();
            tokio::spawn(async move {
                while issued.fetch_add(1, Ordering::Relaxed) < target {
                    if let Ok(s) = reset_connect(addr).await {
                        drop(s);
                    }
                }
            })
        })
        .collect();
    let finished = tokio::time::timeout(Duration::from_secs(60), done_rx).await;
    for c in clients {
        c.abort();
    }
    service.shutdown(Duration::from_secs(1)).await;
    match finished {
        Ok(Ok(at)) => Ok(target as f64 / (at - started).as_secs_f64()),
        _ => Err(format!(
            "accept (ServerService, recorder {}): {} of {target} connections accepted within 60 s",
            if recorder.is_some() { "on" } else { "off" },
            accepted.load(Ordering::Relaxed)
        )),
    }
}
