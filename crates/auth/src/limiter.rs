//! Failed logins, counted per source address and per account name over a sliding minute: past
//! the limit, further attempts are refused without checking the password (which is also what
//! keeps a flood of guesses from costing an argon2 hash each). Node-local: with several nodes
//! each counts its own, so the limit a client meets is at most the number of nodes times this.

use std::collections::HashMap;

use shipshape_meta::Millis;

/// Failures allowed per account name in a window before refusing.
pub const FAILURES: u32 = 10;
/// Failures allowed per source address (several people may share one, behind NAT).
pub const SOURCE_FAILURES: u32 = 50;
/// The window, in milliseconds.
pub const WINDOW_MS: Millis = 60_000;

#[derive(Debug, Default)]
pub struct Limiter {
    failures: HashMap<String, (u32, Millis)>,
}

impl Limiter {
    /// `Some(seconds to wait)` when `key` has failed too often in the current window.
    pub fn blocked(&self, key: &str, limit: u32, now: Millis) -> Option<u64> {
        let (count, since) = self.failures.get(key)?;
        let ends = since + WINDOW_MS;
        (*count >= limit && now < ends).then(|| ((ends - now) as u64).div_ceil(1000))
    }

    pub fn fail(&mut self, key: &str, now: Millis) {
        if self.failures.len() > 100_000 {
            // A flood of distinct keys: forget the finished windows rather than grow.
            self.failures
                .retain(|_, (_, since)| now < *since + WINDOW_MS);
        }
        let entry = self.failures.entry(key.to_string()).or_insert((0, now));
        if now >= entry.1 + WINDOW_MS {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub fn succeed(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_block_until_the_window_ends() {
        let mut l = Limiter::default();
        for _ in 0..FAILURES {
            assert!(l.blocked("1.2.3.4", FAILURES, 0).is_none());
            l.fail("1.2.3.4", 0);
        }
        assert_eq!(l.blocked("1.2.3.4", FAILURES, 1_000), Some(59));
        assert!(
            l.blocked("1.2.3.4", SOURCE_FAILURES, 1_000).is_none(),
            "per limit"
        );
        assert!(l.blocked("5.6.7.8", FAILURES, 1_000).is_none(), "per key");
        assert!(
            l.blocked("1.2.3.4", FAILURES, WINDOW_MS).is_none(),
            "a new window"
        );
        l.succeed("1.2.3.4");
        assert!(l.blocked("1.2.3.4", FAILURES, 1_000).is_none());
    }
}
