//! A `metrics` recorder that keeps every series in atomics and renders the Prometheus text
//! exposition (format 0.0.4): counters, gauges, and histograms with fixed buckets.
//!
//! Ours rather than `metrics-exporter-prometheus`'s: that one, even with its default features
//! off (no HTTP server), brings `metrics-util` and with it a second `hashbrown`, `rand` and
//! `getrandom` and a licence (`foldhash`, Zlib) the project's policy does not list; what the
//! command needs (a few dozen series, rendered on a scrape) is this file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// The histogram buckets (upper bounds, seconds): loopback to a slow remote.
pub(crate) const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A series: its name and its labels, in the order they were given.
type SeriesKey = (String, Vec<(String, String)>);

/// The recorder (shared with its [`Handle`]).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    counters: Mutex<BTreeMap<SeriesKey, Arc<CounterCell>>>,
    gauges: Mutex<BTreeMap<SeriesKey, Arc<GaugeCell>>>,
    histograms: Mutex<BTreeMap<SeriesKey, Arc<HistogramCell>>>,
    help: Mutex<BTreeMap<String, String>>,
}

#[derive(Debug, Default)]
struct CounterCell(AtomicU64);

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

/// An f64 in an `AtomicU64` (its bits).
#[derive(Debug, Default)]
struct GaugeCell(AtomicU64);

impl GaugeCell {
    fn update(&self, f: impl Fn(f64) -> f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(f(f64::from_bits(bits)).to_bits())
            });
    }
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

#[derive(Debug)]
struct HistogramCell {
    /// Per bucket of [`BUCKETS`] (not cumulative), then the count past the last.
    counts: Vec<AtomicU64>,
    sum: GaugeCell,
}

impl Default for HistogramCell {
    fn default() -> Self {
        Self {
            counts: (0..=BUCKETS.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: GaugeCell::default(),
        }
    }
}

impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(BUCKETS.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.increment(value);
    }
}

fn key_of(key: &Key) -> SeriesKey {
    (
        key.name().to_owned(),
        key.labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect(),
    )
}

fn cell<T: Default>(map: &Mutex<BTreeMap<SeriesKey, Arc<T>>>, key: &Key) -> Arc<T> {
    map.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key_of(key))
        .or_default()
        .clone()
}

/// The recorder installed with `metrics::set_global_recorder`: a handle to the registry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Handle(Arc<Registry>);

impl Handle {
    fn describe(&self, key: KeyName, description: SharedString) {
        self.0
            .help
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.as_str().to_owned(), description.to_string());
    }

    /// The text exposition of every series, grouped by name.
    pub(crate) fn render(&self) -> String {
        let help = self
            .0
            .help
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut out = String::new();
        let head = |out: &mut String, name: &str, kind: &str| {
            if let Some(h) = help.get(name) {
                let _ = writeln!(out, "# HELP {name} {}", escape_help(h));
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        let counters = self
            .0
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut last = None;
        for ((name, labels), c) in &counters {
            if last != Some(name) {
                head(&mut out, name, "counter");
                last = Some(name);
            }
            let _ = writeln!(
                out,
                "{name}{} {}",
                labels_text(labels, None),
                c.0.load(Ordering::Relaxed)
            );
        }
        let gauges = self
            .0
            .gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut last = None;
        for ((name, labels), g) in &gauges {
            if last != Some(name) {
                head(&mut out, name, "gauge");
                last = Some(name);
            }
            let _ = writeln!(
                out,
                "{name}{} {}",
                labels_text(labels, None),
                number(g.get())
            );
        }
        let histograms = self
            .0
            .histograms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut last = None;
        for ((name, labels), h) in &histograms {
            if last != Some(name) {
                head(&mut out, name, "histogram");
                last = Some(name);
            }
            let mut cumulative = 0u64;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {cumulative}",
                    labels_text(labels, Some(&number(*bound)))
                );
            }
            cumulative += h.counts[BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{} {cumulative}",
                labels_text(labels, Some("+Inf"))
            );
            let _ = writeln!(
                out,
                "{name}_sum{} {}",
                labels_text(labels, None),
                number(h.sum.get())
            );
            let _ = writeln!(
                out,
                "{name}_count{} {cumulative}",
                labels_text(labels, None)
            );
        }
        out
    }
}

impl Recorder for Handle {
    fn describe_counter(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }
    fn describe_gauge(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }
    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }
    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        Counter::from_arc(cell(&self.0.counters, key))
    }
    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(cell(&self.0.gauges, key))
    }
    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(cell(&self.0.histograms, key))
    }
}

/// `{k="v",...}` (with `le` last for a bucket), or nothing without labels.
fn labels_text(labels: &[(String, String)], le: Option<&str>) -> String {
    let mut all: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_value(v)))
        .collect();
    if let Some(le) = le {
        all.push(format!("le=\"{le}\""));
    }
    if all.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", all.join(","))
    }
}

/// A sample value: Prometheus's spelling of the infinities and NaN.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v}")
    }
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_kind_with_escaped_labels() {
        let h = Handle::default();
        let labels = [("tunnel", "a\"b")];
        let key = Key::from_parts("x_total", &labels);
        let meta = Metadata::new("t", metrics::Level::INFO, None);
        h.register_counter(&key, &meta).increment(3);
        h.register_gauge(&Key::from_name("g"), &meta).set(1.5);
        let hist = h.register_histogram(&Key::from_name("d_seconds"), &meta);
        hist.record(0.002);
        hist.record(100.0);
        let text = h.render();
        assert!(
            text.contains("# TYPE x_total counter\nx_total{tunnel=\"a\\\"b\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("g 1.5\n"), "{text}");
        assert!(
            text.contains("d_seconds_bucket{le=\"0.001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{le=\"0.0025\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("d_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("d_seconds_count 2\n"), "{text}");
    }
}
