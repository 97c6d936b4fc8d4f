//! Time as a parameter.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time (Unix seconds).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock at `t`.
    pub fn new(t: i64) -> Self {
        Self(AtomicI64::new(t))
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    /// Sets the clock to `t` (verifying evidence as of a pinned date).
    pub fn set(&self, t: i64) {
        self.0.store(t, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-01-02T03:04:05Z`).
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// Parses an RFC 3339 time into Unix seconds.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|d| d.unix_timestamp())
        .map_err(|_| format!("invalid time {s:?}: use RFC 3339, e.g. 2030-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::parse_rfc3339("2030-01-01T00:00:00Z").unwrap(),
            1_893_456_000
        );
        assert!(super::parse_rfc3339("yesterday").is_err());
    }
}
