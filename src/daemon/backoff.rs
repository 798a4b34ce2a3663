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

    /// The next delay before connecting again: from 0.5 s (a refused login: 60 s), doubling
    /// to 5 minutes.
    pub fn next(&mut self, auth: bool) -> Duration {
        self.next_within(if auth { 60.0 } else { 0.5 }, 300.0)
    }

    /// The next delay after a session that logged in and then broke without getting work
    /// done: the server is up and lets us in, so the waits (from 0.5 s, doubling) stop
    /// growing at 30 s instead of 5 minutes. A flaky network then costs a backlog seconds
    /// per cut, not minutes, and a server that drops every session is still not hammered.
    pub fn next_after_session(&mut self) -> Duration {
        self.next_within(0.5, 30.0)
    }

    fn next_within(&mut self, base: f64, cap: f64) -> Duration {
        let secs = (base * 2f64.powi(self.attempt.min(16) as i32)).min(cap);
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

    #[test]
    fn after_a_session_the_waits_stop_growing_at_thirty_seconds() {
        let mut b = Backoff::new("s");
        let d: Vec<f64> = (0..12)
            .map(|_| b.next_after_session().as_secs_f64())
            .collect();
        assert!(d[0] >= 0.37 && d[0] <= 0.63, "{d:?}");
        assert!(d[3] >= 3.0 && d[3] <= 5.0, "{d:?}");
        assert!(d[8..].iter().all(|&x| (22.5..=37.5).contains(&x)), "{d:?}");
    }
}
