//! The stored form of an entry, `<expiry>:<bytes>`, and the Redis TTL backing it.

use std::time::Duration;

use stepup_store::{StoreError, StoreResult};

/// How much longer than its logical lifetime an entry is kept by Redis: the slack covers the
/// injected clock's whole seconds and any drift between it and the server's clock.
pub(crate) const GRACE: Duration = Duration::from_secs(60);

/// The longest Redis TTL set, in milliseconds (about 139,000 years; Redis refuses expiry times
/// overflowing its millisecond clock).
const MAX_TTL_MILLIS: u64 = 1 << 52;

/// The stored form of `value` expiring at `expiry` (seconds since the Unix epoch).
pub(crate) fn encode(expiry: u64, value: &[u8]) -> Vec<u8> {
    let head = expiry.to_string();
    let mut stored = Vec::with_capacity(head.len() + 1 + value.len());
    stored.extend_from_slice(head.as_bytes());
    stored.push(b':');
    stored.extend_from_slice(value);
    stored
}

/// The value of a stored entry if it is live at `now`, `None` if it expired.
pub(crate) fn decode_live(stored: &[u8], now: u64) -> StoreResult<Option<Vec<u8>>> {
    let separator = stored
        .iter()
        .position(|byte| *byte == b':')
        .ok_or_else(malformed)?;
    let head = &stored[..separator];
    if head.is_empty() || !head.iter().all(u8::is_ascii_digit) {
        return Err(malformed());
    }
    // At most 20 ASCII digits, which are UTF-8; more overflow and are malformed.
    let expiry: u64 = std::str::from_utf8(head)
        .ok()
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(malformed)?;
    Ok((expiry > now).then(|| stored[separator + 1..].to_vec()))
}

/// The Redis TTL, in milliseconds, of an entry written for `ttl`: its lifetime in whole seconds
/// (rounded up, as [`expiry_after`](stepup_store::expiry_after) does) plus [`GRACE`], so never
/// shorter than the logical lifetime.
pub(crate) fn redis_ttl_millis(ttl: Duration) -> u64 {
    let seconds = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0))
        .saturating_add(GRACE.as_secs());
    seconds.saturating_mul(1000).min(MAX_TTL_MILLIS)
}

fn malformed() -> StoreError {
    StoreError::Corrupt("a stored entry is malformed".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_until_they_expire() {
        let binary: Vec<u8> = (0..=255).collect();
        for value in [&b""[..], b"v", b"12:34", &binary] {
            let stored = encode(100, value);
            assert_eq!(decode_live(&stored, 99).unwrap(), Some(value.to_vec()));
            assert_eq!(decode_live(&stored, 100).unwrap(), None);
            assert_eq!(decode_live(&stored, 101).unwrap(), None);
        }
        let max = encode(u64::MAX, b"x");
        assert_eq!(
            decode_live(&max, u64::MAX - 1).unwrap(),
            Some(b"x".to_vec())
        );
    }

    #[test]
    fn malformed_entries_are_corrupt() {
        for stored in [
            &b""[..],
            b"x",
            b"123",
            b":v",
            b"12a:v",
            b"-1:v",
            b" 1:v",
            b"99999999999999999999999:v",
        ] {
            assert!(
                matches!(decode_live(stored, 0), Err(StoreError::Corrupt(_))),
                "{stored:?}"
            );
        }
    }

    #[test]
    fn the_redis_ttl_outlasts_the_logical_one() {
        assert_eq!(redis_ttl_millis(Duration::from_secs(300)), 360_000);
        assert_eq!(redis_ttl_millis(Duration::from_millis(1)), 61_000);
        assert_eq!(redis_ttl_millis(Duration::ZERO), 60_000);
        assert_eq!(redis_ttl_millis(Duration::MAX), MAX_TTL_MILLIS);
    }
}
