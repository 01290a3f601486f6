//! Sensor profiles: what the virtual world shows the sensors over (virtual) time.

use std::fmt;
use std::str::FromStr;

/// A temperature over time: points (seconds, °C), linear between them, held flat before the
/// first and after the last. Written `21.5` (constant) or `0:20,60:25,120:20`.
#[derive(Clone, Debug, PartialEq)]
pub struct TemperatureProfile {
    /// (milliseconds, milli-°C), strictly increasing in time.
    points: Vec<(u64, i64)>,
}

/// A profile that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("bad temperature profile `{text}`: {problem}. Write a constant in °C (`21.5`) or time:value points in seconds and °C (`0:20,60:25,120:-5`), times increasing")]
pub struct ProfileError {
    text: String,
    problem: String,
}

/// The TMP105's range (datasheet: -55 °C to +125 °C, register to +127.9375).
const MIN_MILLI_C: i64 = -55_000;
const MAX_MILLI_C: i64 = 125_000;

fn parse_fixed(s: &str, scale: f64) -> Option<i64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then(|| (v * scale).round() as i64)
}

impl FromStr for TemperatureProfile {
    type Err = ProfileError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |problem: String| ProfileError { text: text.to_owned(), problem };
        let mut points = Vec::new();
        for part in text.split(',') {
            let (t, v) = match part.split_once(':') {
                Some((t, v)) => (
                    parse_fixed(t, 1000.0).ok_or_else(|| err(format!("`{t}` is not a time in seconds")))?,
                    v,
                ),
                None if !text.contains(',') => (0, part),
                None => return Err(err(format!("`{part}` has no time: write seconds:°C"))),
            };
            let v = parse_fixed(v, 1000.0).ok_or_else(|| err(format!("`{v}` is not a temperature in °C")))?;
            if t < 0 {
                return Err(err("times cannot be negative".into()));
            }
            if !(MIN_MILLI_C..=MAX_MILLI_C).contains(&v) {
                return Err(err(format!("{} °C is outside the TMP105's -55..125 °C", v as f64 / 1000.0)));
            }
            if points.last().is_some_and(|&(lt, _): &(u64, i64)| t as u64 <= lt) {
                return Err(err("times must increase".into()));
            }
            points.push((t as u64, v));
        }
        Ok(TemperatureProfile { points })
    }
}

impl fmt::Display for TemperatureProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .points
            .iter()
            .map(|&(t, v)| format!("{}:{}", t as f64 / 1000.0, v as f64 / 1000.0))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl TemperatureProfile {
    /// A constant temperature.
    pub fn constant(milli_c: i32) -> Self {
        Self { points: vec![(0, i64::from(milli_c))] }
    }

    /// The temperature in milli-°C at `ms` of virtual time (rounded to the nearest milli-°C).
    pub fn milli_c_at(&self, ms: u64) -> i32 {
        let p = &self.points;
        let i = p.partition_point(|&(t, _)| t <= ms);
        let v = if i == 0 {
            p[0].1
        } else if i == p.len() {
            p[i - 1].1
        } else {
            let ((t0, v0), (t1, v1)) = (p[i - 1], p[i]);
            let num = (v1 - v0) * (ms - t0) as i64;
            let den = (t1 - t0) as i64;
            v0 + (2 * num + den * num.signum()) / (2 * den)
        };
        v as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_and_points() {
        let c: TemperatureProfile = "21.5".parse().unwrap();
        assert_eq!((c.milli_c_at(0), c.milli_c_at(99_000)), (21_500, 21_500));
        let p: TemperatureProfile = "0:20,10:25,20:-5".parse().unwrap();
        assert_eq!(p.milli_c_at(0), 20_000);
        assert_eq!(p.milli_c_at(5_000), 22_500);
        assert_eq!(p.milli_c_at(10_000), 25_000);
        assert_eq!(p.milli_c_at(15_000), 10_000);
        assert_eq!(p.milli_c_at(1_000_000), -5_000);
        let late: TemperatureProfile = "5:10,6:11".parse().unwrap();
        assert_eq!(late.milli_c_at(0), 10_000);
        assert_eq!(late.milli_c_at(5_333), 10_333);
        assert_eq!(p.to_string(), "0:20,10:25,20:-5");
    }

    #[test]
    fn bad_profiles_explain_themselves() {
        for (text, want) in [
            ("warm", "`warm` is not a temperature"),
            ("0:20,x:3", "`x` is not a time"),
            ("0:20,0:21", "times must increase"),
            ("0:20,5", "has no time"),
            ("200", "outside the TMP105's"),
            ("-1:20", "cannot be negative"),
            ("nan", "is not a temperature"),
        ] {
            let e = text.parse::<TemperatureProfile>().unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
