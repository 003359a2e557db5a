//! `ttl` values: `900`, `15m`, `1h`, `1h30m`, `3600s` — within what STS AssumeRole accepts.

use crate::error::BrokerError;

/// STS AssumeRole's DurationSeconds bounds.
pub const MIN_TTL_SECONDS: u32 = 900;
pub const MAX_TTL_SECONDS: u32 = 43_200;

const HINT: &str =
    "use seconds or h/m/s units, e.g. 900, 15m, 1h, 1h30m; STS accepts 15m (900) to 12h (43200)";

/// Parses a ttl into seconds and checks it against the STS bounds.
pub fn parse_ttl(raw: &str) -> Result<u32, BrokerError> {
    let s = raw.trim();
    let bad = || BrokerError::invalid("ttl", raw, HINT);
    if s.is_empty() {
        return Err(bad());
    }
    let total: u64 = if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().map_err(|_| bad())?
    } else {
        // Units must appear in the order h, m, s, each at most once.
        let mut total = 0u64;
        let mut digits = String::new();
        let mut last_rank = 0;
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let (rank, factor) = match c {
                'h' => (1, 3600),
                'm' => (2, 60),
                's' => (3, 1),
                _ => return Err(bad()),
            };
            if digits.is_empty() || rank <= last_rank || digits.len() > 9 {
                return Err(bad());
            }
            let n: u64 = digits.parse().map_err(|_| bad())?;
            total += n * factor;
            digits.clear();
            last_rank = rank;
        }
        if !digits.is_empty() {
            return Err(bad());
        }
        total
    };
    if total < u64::from(MIN_TTL_SECONDS) || total > u64::from(MAX_TTL_SECONDS) {
        return Err(BrokerError::invalid(
            "ttl",
            raw,
            format!("it is {total} s, but STS accepts 900 s (15m) to 43200 s (12h); {HINT}"),
        ));
    }
    Ok(total as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_accepts_seconds_and_unit_forms() {
        assert_eq!(parse_ttl("900").unwrap(), 900);
        assert_eq!(parse_ttl("15m").unwrap(), 900);
        assert_eq!(parse_ttl("1h").unwrap(), 3600);
        assert_eq!(parse_ttl("1h30m").unwrap(), 5400);
        assert_eq!(parse_ttl("3600s").unwrap(), 3600);
        assert_eq!(parse_ttl("1h0m30s").unwrap(), 3630);
        assert_eq!(parse_ttl(" 12h ").unwrap(), 43_200);
    }

    #[test]
    fn ttl_outside_sts_bounds_is_rejected_with_the_bounds_in_the_message() {
        for bad in ["899", "14m", "12h1s", "13h", "0"] {
            let msg = parse_ttl(bad).unwrap_err().to_string();
            assert!(msg.contains("900 s (15m) to 43200 s (12h)"), "{bad}: {msg}");
        }
    }

    #[test]
    fn ttl_garbage_is_rejected() {
        for bad in [
            "",
            "h",
            "1d",
            "30m1h",
            "1h1h",
            "1.5h",
            "-900",
            "15 m",
            "1h30",
            "99999999999999999999",
        ] {
            assert!(parse_ttl(bad).is_err(), "{bad:?} should fail");
        }
    }
}
