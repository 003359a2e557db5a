//! `ttl` values: `900`, `15m`, `1h`, `1h30m`, `3600s` — within what STS AssumeRole accepts.

use crate::error::BrokerError;

/// STS AssumeRole's DurationSeconds bounds.
pub const MIN_TTL_SECONDS: u32 = 900;
pub const MAX_TTL_SECONDS: u32 = 43_200;

const HINT: &str =
    "use seconds or h/m/s units, e.g. 900, 15m, 1h, 1h30m; STS accepts 15m (900) to 12h (43200)";

/// Parses a ttl into seconds and checks it against the STS bounds.
pub fn parse_ttl(raw: &str) -> Result<u32, BrokerError> {
    let total = duration_seconds(raw.trim(), false)
        .ok_or_else(|| BrokerError::invalid("ttl", raw, HINT))?;
    if total < u64::from(MIN_TTL_SECONDS) || total > u64::from(MAX_TTL_SECONDS) {
        return Err(BrokerError::invalid(
            "ttl",
            raw,
            format!("it is {total} s, but STS accepts 900 s (15m) to 43200 s (12h); {HINT}"),
        ));
    }
    Ok(total as u32)
}

/// Seconds in `3600` or in units (`1h30m`, `3600s`; with `allow_days`, also `1d`), each unit at
/// most once and in the order d, h, m, s. The caller checks bounds and words its own error.
pub(crate) fn duration_seconds(s: &str, allow_days: bool) -> Option<u64> {
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    let mut total = 0u64;
    let mut digits = String::new();
    let mut last_rank = 0;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let (rank, factor) = match c {
            'd' if allow_days => (1, 86_400),
            'h' => (2, 3600),
            'm' => (3, 60),
            's' => (4, 1),
            _ => return None,
        };
        // Nine digits per unit keep the sum far from overflowing.
        if digits.is_empty() || rank <= last_rank || digits.len() > 9 {
            return None;
        }
        total += digits.parse::<u64>().ok()? * factor;
        digits.clear();
        last_rank = rank;
    }
    digits.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_all_refused;

    #[test]
    fn ttl_accepts_seconds_and_unit_forms() {
        for (raw, seconds) in [
            ("900", 900),
            ("15m", 900),
            ("1h", 3600),
            ("1h30m", 5400),
            ("3600s", 3600),
            ("1h0m30s", 3630),
            (" 12h ", 43_200),
        ] {
            assert_eq!(parse_ttl(raw).unwrap(), seconds, "{raw}");
        }
    }

    #[test]
    fn ttl_outside_sts_bounds_is_rejected_with_the_bounds_in_the_message() {
        let bad = ["899", "14m", "12h1s", "13h", "0"];
        assert_all_refused(parse_ttl, &bad, "900 s (15m) to 43200 s (12h)");
    }

    #[test]
    fn ttl_garbage_is_rejected() {
        let garbage = [
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
        ];
        assert_all_refused(parse_ttl, &garbage, "ttl");
    }
}
