//! Retry policies: any `Fn(attempt) -> Duration`, and Twisted's `backoffPolicy`.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long to wait before retry number `attempt` (1 for the first retry).
pub trait RetryPolicy: Send + Sync {
    /// The delay before retry `attempt`.
    fn delay(&self, attempt: u32) -> Duration;
}

impl<F: Fn(u32) -> Duration + Send + Sync> RetryPolicy for F {
    fn delay(&self, attempt: u32) -> Duration {
        self(attempt)
    }
}

/// Jitter added to every delay, in seconds.
#[derive(Clone, Copy, Debug)]
pub enum Jitter {
    /// Uniform in `[0, max)`.
    Uniform(f64),
    /// Always this much (for tests, and Twisted's test vectors).
    Fixed(f64),
}

/// Twisted's `backoffPolicy`: `min(initial × factor^min(attempt, 100), max) + jitter`, the jitter
/// added after the cap (so the real maximum is `max` plus the jitter's maximum).
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: f64,
    factor: f64,
    max: f64,
    jitter: Jitter,
}

impl Default for Backoff {
    /// Twisted's defaults: 1 s, ×1.5, capped at 60 s, plus up to 1 s of jitter.
    fn default() -> Self {
        Self {
            initial: 1.0,
            factor: 1.5,
            max: 60.0,
            jitter: Jitter::Uniform(1.0),
        }
    }
}

impl Backoff {
    /// Twisted's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The first delay, in seconds.
    pub fn initial(mut self, seconds: f64) -> Self {
        self.initial = seconds.max(0.0);
        self
    }

    /// The growth factor per attempt.
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor.max(0.0);
        self
    }

    /// The cap, in seconds, before jitter.
    pub fn max(mut self, seconds: f64) -> Self {
        self.max = seconds.max(0.0);
        self
    }

    /// The jitter.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The delay in seconds, as Twisted computes it (no overflow: the exponent is clamped at
    /// 100 and an infinite product becomes the cap).
    pub fn seconds(&self, attempt: u32) -> f64 {
        let grown = self.initial * self.factor.powi(attempt.min(100) as i32);
        let capped = if grown.is_finite() {
            grown.min(self.max)
        } else {
            self.max
        };
        capped
            + match self.jitter {
                Jitter::Fixed(j) => j,
                Jitter::Uniform(max) => random_unit() * max,
            }
    }
}

impl RetryPolicy for Backoff {
    fn delay(&self, attempt: u32) -> Duration {
        Duration::from_secs_f64(self.seconds(attempt).clamp(0.0, 86_400.0 * 365.0))
    }
}

/// A number in `[0, 1)`, from std's randomly keyed hasher (no RNG dependency needed for
/// jitter).
fn random_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twisted_values_with_fixed_jitter() {
        let b = Backoff::new().jitter(Jitter::Fixed(1.0));
        assert_eq!(b.seconds(0), 2.0);
        assert_eq!(b.seconds(1), 2.5);
        assert!((b.seconds(10) - 58.6650390625).abs() < 1e-9);
        for n in [20, 100, 1751, 1_000_000] {
            assert_eq!(b.seconds(n), 61.0, "attempt {n}");
        }
        assert_eq!(
            Backoff::new()
                .factor(1e10)
                .jitter(Jitter::Fixed(1.0))
                .seconds(1751),
            61.0
        );
    }

    #[test]
    fn uniform_jitter_stays_in_range() {
        let b = Backoff::new();
        for n in 0..1000 {
            let s = b.seconds(n);
            let base = Backoff::new().jitter(Jitter::Fixed(0.0)).seconds(n);
            assert!(s >= base && s < base + 1.0, "{s} for base {base}");
        }
    }

    #[test]
    fn closures_are_policies() {
        let p = |n: u32| Duration::from_secs(u64::from(n));
        assert_eq!(RetryPolicy::delay(&p, 3), Duration::from_secs(3));
    }
}
