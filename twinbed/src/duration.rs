//! Durations on the command line: `90` (seconds), `500ms`, `90s`, `15m`, `2h`, `7d`.

use std::time::Duration;

/// Parses a duration; the error says what is accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write e.g. 90, 500ms, 90s, 15m, 2h or 7d"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => return Err(format!("`{text}` has unknown unit `{unit}`: use ms, s, m, h or d")),
    };
    ms.map(Duration::from_millis).ok_or_else(|| format!("`{text}` is too long"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn units() {
        use std::time::Duration as D;
        assert_eq!(super::parse("90"), Ok(D::from_secs(90)));
        assert_eq!(super::parse("500ms"), Ok(D::from_millis(500)));
        assert_eq!(super::parse("15m"), Ok(D::from_secs(900)));
        assert_eq!(super::parse("7d"), Ok(D::from_secs(7 * 86_400)));
        assert!(super::parse("5 parsecs").unwrap_err().contains("unknown unit"));
        assert!(super::parse("x").unwrap_err().contains("not a duration"));
    }
}
