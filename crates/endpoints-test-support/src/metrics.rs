//! A [`metrics`] recorder that keeps everything in memory, for tests that check what the
//! library records. Install it for the current thread with [`Recorded::local`] (listeners and
//! services register their handles when created, so create them while the guard is held; the
//! handles then record from any thread), or globally in a test binary of its own.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, LocalRecorderGuard, Metadata,
    Recorder, SharedString, Unit,
};

/// A key: the name and its labels, sorted.
type Id = (String, Vec<(String, String)>);

fn id(key: &Key) -> Id {
    let mut labels: Vec<(String, String)> = key
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    labels.sort();
    (key.name().to_owned(), labels)
}

/// A gauge kept as an `f64`.
#[derive(Debug, Default)]
struct Level(Mutex<f64>);

impl GaugeFn for Level {
    fn increment(&self, value: f64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) += value;
    }
    fn decrement(&self, value: f64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) -= value;
    }
    fn set(&self, value: f64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = value;
    }
}

/// Every value a histogram got.
#[derive(Debug, Default)]
struct Values(Mutex<Vec<f64>>);

impl HistogramFn for Values {
    fn record(&self, value: f64) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(value);
    }
}

#[derive(Debug, Default)]
struct Store {
    counters: BTreeMap<Id, Arc<AtomicU64>>,
    gauges: BTreeMap<Id, Arc<Level>>,
    histograms: BTreeMap<Id, Arc<Values>>,
}

/// The recorder: cheap to clone (the clones share what was recorded).
#[derive(Clone, Debug, Default)]
pub struct Recorded(Arc<Mutex<Store>>);

impl Recorded {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Install it for this thread until the guard is dropped.
    pub fn local(&self) -> LocalRecorderGuard<'_> {
        metrics::set_default_local_recorder(self)
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counter `name` with exactly `labels` (in any order); 0 if never registered.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let id = wanted(name, labels);
        self.store()
            .counters
            .get(&id)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Whether a counter `name` with exactly `labels` was registered (possibly still at 0).
    pub fn has_counter(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.store().counters.contains_key(&wanted(name, labels))
    }

    /// The sum of every counter `name`, whatever its labels.
    pub fn counter_sum(&self, name: &str) -> u64 {
        self.store()
            .counters
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .sum()
    }

    /// The gauge `name` with exactly `labels`, if registered.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let id = wanted(name, labels);
        self.store()
            .gauges
            .get(&id)
            .map(|g| *g.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The values the histogram `name` with exactly `labels` got.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let id = wanted(name, labels);
        self.store()
            .histograms
            .get(&id)
            .map(|h| h.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Every key registered: its name and labels.
    pub fn keys(&self) -> Vec<Id> {
        let s = self.store();
        s.counters
            .keys()
            .chain(s.gauges.keys())
            .chain(s.histograms.keys())
            .cloned()
            .collect()
    }
}

fn wanted(name: &str, labels: &[(&str, &str)]) -> Id {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    l.sort();
    (name.to_owned(), l)
}

impl Recorder for Recorded {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let c = self.store().counters.entry(id(key)).or_default().clone();
        Counter::from_arc(c)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let g = self.store().gauges.entry(id(key)).or_default().clone();
        Gauge::from_arc(g)
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let h = self.store().histograms.entry(id(key)).or_default().clone();
        Histogram::from_arc(h)
    }
}

/// Every label value the library may record, apart from tunnel names: small fixed sets.
pub const FIXED_VALUES: &[&str] = &[
    "tls",
    "proxy",
    "ws",
    "ssh",
    "timeout",
    "protocol",
    "certificate",
    "refused",
    "io",
    "policy",
    "limit",
    "clean",
    "truncated",
    "drain_cut",
    "idle_cut",
    "up",
    "down",
];

impl Recorded {
    /// Panic unless every label value recorded is from [`FIXED_VALUES`] or one of `tunnels`:
    /// never a description, an address, an error's text.
    pub fn assert_plain_labels(&self, tunnels: &[&str]) {
        for (name, labels) in self.keys() {
            for (k, v) in labels {
                assert!(
                    FIXED_VALUES.contains(&v.as_str()) || tunnels.contains(&v.as_str()),
                    "{name}: label {k}={v:?} is not from a fixed set nor a tunnel's name"
                );
            }
        }
    }
}
