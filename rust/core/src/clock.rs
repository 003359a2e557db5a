//! Time and sleep are parameters: the logic asks a [`Clock`], tests move a [`ManualClock`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Wall-clock time (credentials expire at wall-clock instants).
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// Waiting between retries.
pub trait Sleeper: Send + Sync {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Randomness for jitter: a number in `[0, 1)`.
pub trait Jitter: Send + Sync {
    fn unit(&self) -> f64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A tiny splitmix64 generator: jitter needs spread, not cryptographic strength.
#[derive(Debug)]
pub struct SplitMixJitter {
    state: AtomicU64,
}

impl SplitMixJitter {
    pub fn seeded(seed: u64) -> Self {
        SplitMixJitter {
            state: AtomicU64::new(seed),
        }
    }

    /// Seeded from the time and the address of a stack value, so two JVMs differ.
    pub fn from_entropy() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let local = 0u8;
        let addr = &local as *const u8 as u64;
        Self::seeded(nanos ^ addr.rotate_left(32) ^ u64::from(std::process::id()))
    }
}

impl Jitter for SplitMixJitter {
    fn unit(&self) -> f64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A clock that only moves when told to; its [`Sleeper`] side advances it instead of waiting.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
    slept: Arc<Mutex<Vec<Duration>>>,
}

impl ManualClock {
    pub fn at_epoch_seconds(secs: u64) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(secs))),
            slept: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }

    /// Every duration passed to `sleep`, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.slept.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Sleeper for ManualClock {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.slept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(duration);
        self.advance(duration);
        Box::pin(std::future::ready(()))
    }
}

/// A jitter source that always answers the same number (tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedJitter(pub f64);

impl Jitter for FixedJitter {
    fn unit(&self) -> f64 {
        self.0
    }
}

/// Seconds since the Unix epoch (0 for instants before it).
pub fn epoch_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 in UTC with second precision, e.g. `2025-01-31T12:00:00Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = epoch_seconds(t);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_735_689_599)),
            "2024-12-31T23:59:59Z"
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told_or_slept() {
        let c = ManualClock::at_epoch_seconds(100);
        assert_eq!(epoch_seconds(c.now()), 100);
        c.advance(Duration::from_secs(5));
        assert_eq!(epoch_seconds(c.now()), 105);
        drop(c.sleep(Duration::from_secs(2)));
        assert_eq!(epoch_seconds(c.now()), 107);
        assert_eq!(c.sleeps(), vec![Duration::from_secs(2)]);
    }

    #[test]
    fn splitmix_jitter_stays_in_unit_interval() {
        let j = SplitMixJitter::seeded(42);
        for _ in 0..10_000 {
            let x = j.unit();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
