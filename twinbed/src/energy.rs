//! Energy budgets as CI gates (issue #6): a budget file, the figures a run measured, the
//! verdict as a table, and a plot of current and battery over time.
//!
//! A budget file (`budgets.toml`) lists limits; every key is optional, unknown keys are errors:
//!
//! ```toml
//! average_current_ua = 120.0     # at most, over the whole run
//! battery_life_days = 365.0      # at least, projected from the average current and the battery
//! radio_on_share = 0.02          # at most: share of time the modem is not off or idle (0..1)
//! energy_per_reading_uj = 900.0  # at most: the run's energy divided by the readings taken
//! ```

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// Limits a run must keep (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Highest average current over the run, µA.
    pub average_current_ua: Option<f64>,
    /// Lowest projected battery life, days.
    pub battery_life_days: Option<f64>,
    /// Highest share of time with the radio receiving or transmitting (0..1).
    pub radio_on_share: Option<f64>,
    /// Highest energy per reading taken, µJ.
    pub energy_per_reading_uj: Option<f64>,
}

/// Why a budget file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The file could not be read.
    #[error("cannot read the budget file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a budget.
    #[error("the budget file {path} is not valid: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong (TOML syntax, an unknown key, a wrong type).
        reason: String,
    },
    /// A limit makes no sense.
    #[error("the budget file {path}: `{key}` = {value} must be {what}")]
    Value {
        /// The file.
        path: String,
        /// The key.
        key: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        what: &'static str,
    },
    /// The plot could not be drawn.
    #[error("cannot draw the plot {path}: {reason}")]
    Plot {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl Budget {
    /// Reads and checks a budget file.
    pub fn load(path: &Path) -> Result<Budget, BudgetError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| BudgetError::Read { path: path.display().to_string(), source })?;
        Budget::parse(&text, &path.display().to_string())
    }

    /// Parses budget TOML (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Budget, BudgetError> {
        let b: Budget = toml::from_str(text)
            .map_err(|e| BudgetError::Parse { path: origin.to_owned(), reason: e.message().to_owned() })?;
        let bad = |key, value, what| BudgetError::Value { path: origin.to_owned(), key, value, what };
        for (key, value) in [
            ("average_current_ua", b.average_current_ua),
            ("battery_life_days", b.battery_life_days),
            ("energy_per_reading_uj", b.energy_per_reading_uj),
        ] {
            if let Some(v) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(bad(key, v, "a positive number"));
            }
        }
        if let Some(v) = b.radio_on_share.filter(|v| !(0.0..=1.0).contains(v)) {
            return Err(bad("radio_on_share", v, "a share between 0 and 1"));
        }
        Ok(b)
    }
}

/// Time and charge in one power state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StateEnergy {
    /// The part and its state, e.g. `cpu sleep`, `modem tx`.
    pub state: String,
    /// Time spent in it, s.
    pub seconds: f64,
    /// Charge drawn in it, µAh.
    pub charge_uah: f64,
}

/// What a run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Measured {
    /// Virtual time covered, s.
    pub seconds: f64,
    /// Supply voltage, mV (energy = charge x voltage).
    pub supply_mv: f64,
    /// Charge drawn, µAh.
    pub charge_uah: f64,
    /// Battery capacity, mAh (0: no battery in the board file).
    pub capacity_mah: f64,
    /// The battery's self-discharge as an equivalent current, µA.
    pub self_discharge_ua: f64,
    /// Readings the firmware took.
    pub readings: u64,
    /// Time the radio was receiving or transmitting, s.
    pub radio_on_seconds: f64,
    /// Per state, largest charge first.
    pub states: Vec<StateEnergy>,
}

impl Measured {
    /// Average current over the run, µA.
    pub fn average_current_ua(&self) -> f64 {
        if self.seconds > 0.0 {
            self.charge_uah * 3600.0 / self.seconds
        } else {
            0.0
        }
    }

    /// Projected battery life at the run's average current plus self-discharge, days
    /// (infinite with no current at all; 0 with no battery).
    pub fn battery_life_days(&self) -> f64 {
        let ua = self.average_current_ua() + self.self_discharge_ua;
        if self.capacity_mah <= 0.0 {
            0.0
        } else if ua <= 0.0 {
            f64::INFINITY
        } else {
            self.capacity_mah * 1000.0 / ua / 24.0
        }
    }

    /// Share of the run with the radio receiving or transmitting.
    pub fn radio_on_share(&self) -> f64 {
        if self.seconds > 0.0 {
            self.radio_on_seconds / self.seconds
        } else {
            0.0
        }
    }

    /// Energy per reading, µJ (1 µAh at 1 V is 3.6 mJ).
    pub fn energy_per_reading_uj(&self) -> f64 {
        if self.readings == 0 {
            return f64::INFINITY;
        }
        self.charge_uah * 3.6 * self.supply_mv / self.readings as f64
    }
}

/// The figures of a run from the engine's energy report (boards with a `[power]` table) and
/// the readings the firmware took.
pub fn measured(report: &twinbed_engine::EnergyReport, readings: u64) -> Measured {
    let seconds = report.time_ns as f64 / 1e9;
    let mut states: Vec<StateEnergy> = report
        .states
        .iter()
        .filter(|e| e.time_ns > 0)
        .map(|e| StateEnergy {
            state: format!("{} {}", e.rail, e.state),
            seconds: e.time_ns as f64 / 1e9,
            charge_uah: e.charge_nah as f64 / 1000.0,
        })
        .collect();
    states.sort_by(|a, b| b.charge_uah.total_cmp(&a.charge_uah).then_with(|| a.state.cmp(&b.state)));
    let radio_on_seconds =
        ["rx", "tx"].iter().filter_map(|s| report.state("modem", s)).map(|e| e.time_ns as f64 / 1e9).sum();
    let (capacity_mah, self_discharge_ua) = match &report.battery {
        Some(b) if seconds > 0.0 => {
            (b.capacity_uah as f64 / 1000.0, b.self_discharge_nah as f64 / 1000.0 * 3600.0 / seconds)
        }
        Some(b) => (b.capacity_uah as f64 / 1000.0, 0.0),
        None => (0.0, 0.0),
    };
    Measured {
        seconds,
        supply_mv: f64::from(report.supply_mv),
        charge_uah: report.total_uah(),
        capacity_mah,
        self_discharge_ua,
        readings,
        radio_on_seconds,
        states,
    }
}

/// One line of the verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// The budget key.
    pub key: &'static str,
    /// `<=` or `>=`.
    pub rule: &'static str,
    /// The limit.
    pub limit: f64,
    /// What the run measured.
    pub measured: f64,
    /// Within the limit.
    pub ok: bool,
}

/// Checks `m` against every limit of `b`, in the file's key order.
pub fn check(b: &Budget, m: &Measured) -> Vec<Check> {
    let mut out = Vec::new();
    let mut at_most = |key, limit: Option<f64>, measured: f64| {
        if let Some(limit) = limit {
            out.push(Check { key, rule: "<=", limit, measured, ok: measured <= limit });
        }
    };
    at_most("average_current_ua", b.average_current_ua, m.average_current_ua());
    at_most("radio_on_share", b.radio_on_share, m.radio_on_share());
    at_most("energy_per_reading_uj", b.energy_per_reading_uj, m.energy_per_reading_uj());
    if let Some(limit) = b.battery_life_days {
        let measured = m.battery_life_days();
        out.push(Check { key: "battery_life_days", rule: ">=", limit, measured, ok: measured >= limit });
    }
    out
}

/// The verdict as a table (markdown), breaches marked.
pub fn verdict_table(checks: &[Check]) -> String {
    let mut s = String::from("| budget | limit | measured | verdict |\n|---|---|---|---|\n");
    for c in checks {
        let _ = writeln!(
            s,
            "| {} | {} {} | {} | {} |",
            c.key,
            c.rule,
            fmt_limit(c.limit),
            fmt_limit(c.measured),
            if c.ok { "ok" } else { "BREACH" }
        );
    }
    s
}

/// The energy per state as a table (markdown), largest first.
pub fn energy_table(m: &Measured) -> String {
    let mut s =
        String::from("| state | time | share of time | charge | share of charge |\n|---|---|---|---|---|\n");
    for e in &m.states {
        let _ = writeln!(
            s,
            "| {} | {} s | {:.2} % | {} µAh | {:.2} % |",
            e.state,
            fmt_num(e.seconds),
            100.0 * e.seconds / m.seconds.max(f64::MIN_POSITIVE),
            fmt_num(e.charge_uah),
            100.0 * e.charge_uah / m.charge_uah.max(f64::MIN_POSITIVE)
        );
    }
    let _ = writeln!(
        s,
        "| total | {} s | | {} µAh (average {} µA) | |",
        fmt_num(m.seconds),
        fmt_num(m.charge_uah),
        fmt_num(m.average_current_ua())
    );
    s
}

/// Four significant digits, no exponent for the sizes this deals with.
/// As [`fmt_num`], but a non-zero value under 0.01 keeps three significant digits (a radio-on
/// share of 0.00046 must not read as 0.000).
fn fmt_limit(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.01 && v.is_finite() {
        let digits = (2 - v.abs().log10().floor() as i32) as usize;
        return format!("{v:.digits$}");
    }
    fmt_num(v)
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let digits = if v.abs() >= 1000.0 {
        0
    } else if v.abs() >= 100.0 {
        1
    } else if v.abs() >= 10.0 {
        2
    } else {
        3
    };
    format!("{v:.digits$}")
}

/// Current and battery over time, for the plot: one point per bucket, each the bucket's
/// average current (exact: the charge drawn in it over its length) and the battery voltage at
/// its end.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Series {
    /// Bucket ends, s.
    pub t_s: Vec<f64>,
    /// Average current in each bucket, µA.
    pub current_ua: Vec<f64>,
    /// Battery voltage at each bucket's end, mV.
    pub battery_mv: Vec<f64>,
}

/// Draws `series` as an SVG: current (µA, log scale) above, battery voltage (mV) below.
pub fn plot_svg(series: &Series, title: &str, path: &Path) -> Result<(), BudgetError> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| BudgetError::Plot {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if series.t_s.is_empty() {
        return Err(err(&"no points to draw"));
    }
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(400);
    let t_max = series.t_s.last().copied().unwrap_or(1.0).max(1e-9);
    let (hours, unit) = if t_max > 2.0 * 3600.0 { (3600.0, "h") } else { (1.0, "s") };
    let i_max = series.current_ua.iter().copied().fold(1.0, f64::max) * 2.0;
    let i_min = series.current_ua.iter().copied().filter(|v| *v > 0.0).fold(i_max, f64::min) / 2.0;
    let mut c = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max / hours, (i_min.max(1e-3)..i_max).log_scale())
        .map_err(|e| err(&e))?;
    c.configure_mesh().x_desc(format!("time ({unit})")).y_desc("current (µA)").draw().map_err(|e| err(&e))?;
    c.draw_series(LineSeries::new(
        series.t_s.iter().zip(&series.current_ua).map(|(t, i)| (t / hours, i.max(i_min.max(1e-3)))),
        &RED,
    ))
    .map_err(|e| err(&e))?;
    let v_min = series.battery_mv.iter().copied().fold(f64::INFINITY, f64::min);
    let v_max = series.battery_mv.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((v_max - v_min) * 0.1).max(5.0);
    let mut c = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max / hours, (v_min - pad)..(v_max + pad))
        .map_err(|e| err(&e))?;
    c.configure_mesh().x_desc(format!("time ({unit})")).y_desc("battery (mV)").draw().map_err(|e| err(&e))?;
    c.draw_series(LineSeries::new(
        series.t_s.iter().zip(&series.battery_mv).map(|(t, v)| (t / hours, *v)),
        &BLUE,
    ))
    .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured() -> Measured {
        Measured {
            seconds: 3600.0,
            supply_mv: 3600.0,
            charge_uah: 100.0,
            capacity_mah: 2400.0,
            self_discharge_ua: 0.0,
            readings: 360,
            radio_on_seconds: 36.0,
            states: vec![
                StateEnergy { state: "cpu sleep".into(), seconds: 3500.0, charge_uah: 40.0 },
                StateEnergy { state: "modem tx".into(), seconds: 10.0, charge_uah: 60.0 },
            ],
        }
    }

    #[test]
    fn figures_follow_from_charge_time_and_battery() {
        let m = measured();
        assert!((m.average_current_ua() - 100.0).abs() < 1e-9);
        assert!((m.battery_life_days() - 1000.0).abs() < 1e-9, "2400 mAh at 100 µA");
        assert!((m.radio_on_share() - 0.01).abs() < 1e-12);
        assert!((m.energy_per_reading_uj() - 3600.0).abs() < 1e-6, "100 µAh x 3.6 V = 1.296 J over 360");
    }

    #[test]
    fn a_budget_passes_or_names_its_breach() {
        let b =
            Budget::parse("average_current_ua = 150\nbattery_life_days = 1200\nradio_on_share = 0.05\n", "t")
                .unwrap();
        let checks = check(&b, &measured());
        let failed: Vec<_> = checks.iter().filter(|c| !c.ok).map(|c| c.key).collect();
        assert_eq!(failed, vec!["battery_life_days"]);
        let t = verdict_table(&checks);
        assert!(t.contains("| battery_life_days | >= 1200 | 1000 | BREACH |"), "{t}");
        assert!(t.contains("| average_current_ua | <= 150.0 | 100.0 | ok |"), "{t}");
        // Small shares keep three significant digits.
        let c = Check { key: "radio_on_share", rule: "<=", limit: 0.005, measured: 0.000_456_7, ok: true };
        assert!(verdict_table(&[c]).contains("| radio_on_share | <= 0.00500 | 0.000457 | ok |"));
    }

    #[test]
    fn broken_budget_files_say_what_is_wrong() {
        for (text, needle) in [
            ("average_current = 1\n", "unknown field"),
            ("average_current_ua = \"lots\"\n", "invalid type"),
            ("average_current_ua = -3\n", "must be a positive number"),
            ("radio_on_share = 2\n", "between 0 and 1"),
            ("average_current_ua = \n", "budgets.toml"),
        ] {
            let e = Budget::parse(text, "budgets.toml").unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("budgets.toml"), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_energy_table_and_the_plot_are_written() {
        let t = energy_table(&measured());
        assert!(t.contains("| modem tx | 10.00 s | 0.28 % | 60.00 µAh | 60.00 % |"), "{t}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("energy.svg");
        let series = Series {
            t_s: vec![60.0, 120.0, 180.0],
            current_ua: vec![80.0, 2000.0, 75.0],
            battery_mv: vec![3600.0, 3599.0, 3598.0],
        };
        plot_svg(&series, "dev0", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("battery (mV)"), "{}", &svg[..200.min(svg.len())]);
        assert!(plot_svg(&Series::default(), "x", &path).is_err());
    }
}
