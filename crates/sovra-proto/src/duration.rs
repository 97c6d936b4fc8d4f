//! Durations on the wire: `"86400s"` on output; `s`, `m`, `h`, `d` suffixes on input.

/// The longest duration accepted anywhere (TTLs, rotation periods, destruction delays): 100
/// years, so every time computed from one stays a valid RFC 3339 date.
pub const MAX_SECS: u64 = 36_500 * 86_400;

/// Parses `"30d"`, `"720h"`, `"90m"`, `"86400s"` (or `"86400.0s"` with a zero fraction) into
/// seconds, at most [`MAX_SECS`]: within what the OpenAPI pattern `^0*[0-9]{1,11}(\.0)?[smhd]$`
/// admits (no surrounding whitespace). Zero is a duration (e.g. no minimum destruction delay);
/// callers refuse it where it makes no sense.
pub fn parse(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid duration {s:?}: use a whole number followed by s, m, h or d (e.g. \"86400s\", \"30d\")"
        )
    };
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (s.get(..i), 1u64),
        Some((i, 'm')) => (s.get(..i), 60),
        Some((i, 'h')) => (s.get(..i), 3600),
        Some((i, 'd')) => (s.get(..i), 86_400),
        _ => return Err(bad()),
    };
    let num = num.ok_or_else(bad)?;
    let num = num.strip_suffix(".0").unwrap_or(num);
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs = num
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(bad)?;
    if secs > MAX_SECS {
        return Err(format!(
            "duration {s:?} is longer than the maximum of 36500d (100 years)"
        ));
    }
    Ok(secs)
}

/// Formats seconds as `"{n}s"`.
pub fn format(secs: u64) -> String {
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    #[test]
    fn units() {
        assert_eq!(super::parse("86400s").unwrap(), 86_400);
        assert_eq!(super::parse("30d").unwrap(), 2_592_000);
        assert_eq!(super::parse("2h").unwrap(), 7200);
        assert_eq!(super::parse("1m").unwrap(), 60);
        assert_eq!(super::parse("0s").unwrap(), 0);
        assert_eq!(super::parse("36500d").unwrap(), super::MAX_SECS);
        for bad in [
            "",
            "s",
            "-1s",
            "1.5s",
            "10",
            "1w",
            "99999999999999999999d",
            "99999999999d",
            "36501d",
            " 86400s",
            "86400s ",
            "86400s\n",
            "86400 s",
        ] {
            assert!(super::parse(bad).is_err(), "{bad}");
        }
    }
}
