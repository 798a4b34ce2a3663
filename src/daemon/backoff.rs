//! Jittered exponential backoff for reconnecting.

use std::time::Duration;

/// 0.5 s doubling to 5 min (authentication failures start at 1 min), ±25 % jitter.
pub struct Backoff {
    attempt: u32,
    seed: u64,
}

impl Backoff {
    /// A fresh backoff; `salt` decorrelates the jitter of different tasks.
    pub fn new(salt: &str) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let s = salt
            .bytes()
            .fold(t ^ u64::from(std::process::id()), |h, b| {
                h.rotate_left(7) ^ u64::from(b)
            });
        Backoff {
            attempt: 0,
            seed: s | 1,
        }
    }

    /// The next delay.
    pub fn next(&mut self, auth: bool) -> Duration {
        let base = if auth { 60.0 } else { 0.5 };
        let secs = (base * 2f64.powi(self.attempt.min(16) as i32)).min(300.0);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64: jitter without a random-number dependency.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = 0.75 + (self.seed % 1000) as f64 / 2000.0;
        Duration::from_secs_f64(secs * jitter)
    }

    /// Back to the shortest delay (after a session that lasted).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_caps() {
        let mut b = Backoff::new("t");
        let d: Vec<f64> = (0..12).map(|_| b.next(false).as_secs_f64()).collect();
        assert!(d[0] >= 0.37 && d[0] <= 0.63, "{d:?}");
        assert!(d[3] >= 3.0 && d[3] <= 5.0, "{d:?}");
        assert!(d.iter().all(|&x| x <= 375.0), "{d:?}");
        b.reset();
        assert!(b.next(true).as_secs_f64() >= 45.0);
    }
}
