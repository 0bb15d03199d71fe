//! The LED's changes, said compactly: each one while they are few and irregular, then, once the
//! LED blinks steadily (three equal intervals) or fast (changes under [`FAST_NS`] apart), a count
//! and the interval instead of a line per change.

use serde::Serialize;

/// Changes closer than this (10 ms of simulated time) are counted, not shown one by one.
pub const FAST_NS: u64 = 10_000_000;
/// How many changes the report lists one by one.
const KEPT: usize = 1000;

/// A change of the LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Edge {
    #[serde(rename = "at_seconds", serialize_with = "as_seconds")]
    pub at_ns: u64,
    pub on: bool,
}

fn as_seconds<S: serde::Serializer>(ns: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(*ns as f64 / 1e9)
}

/// A run of changes `interval_ns` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Steady {
    /// Changes in the run.
    pub changes: u64,
    #[serde(rename = "interval_seconds", serialize_with = "as_seconds")]
    pub interval_ns: u64,
    #[serde(rename = "from_seconds", serialize_with = "as_seconds")]
    pub from_ns: u64,
    #[serde(rename = "to_seconds", serialize_with = "as_seconds")]
    pub to_ns: u64,
}

/// What is going on, for the lines said.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Each change is said.
    Each,
    /// Changes at the same interval are counted: since the one at `from_ns`, `silent` of them.
    Steady {
        interval_ns: u64,
        from_ns: u64,
        silent: u64,
    },
    /// Changes under FAST_NS apart are counted: since the one at `from_ns`, `silent` of them.
    Fast { from_ns: u64, silent: u64 },
}

/// Follows the LED's level and says what it does.
#[derive(Debug)]
pub struct Tracker {
    level: Option<bool>,
    last_ns: Option<u64>,
    /// The intervals between the latest toggles (not counting the level first becoming known).
    intervals: Vec<u64>,
    mode: Mode,
    pub changes: u64,
    pub edges: Vec<Edge>,
    /// The longest steady run seen.
    pub steady: Option<Steady>,
    run: Option<Steady>,
    /// How far apart, in thousandths, intervals may be and count as the same: 1 for a
    /// simulator's exact clock, more for times taken from the host's clock.
    permille: u64,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            level: None,
            last_ns: None,
            intervals: Vec::new(),
            mode: Mode::Each,
            changes: 0,
            edges: Vec::new(),
            steady: None,
            run: None,
            permille: 1,
        }
    }
}

impl Tracker {
    /// A tracker that takes intervals `permille` thousandths apart for the same.
    pub fn with_tolerance(permille: u64) -> Tracker {
        Tracker {
            permille,
            ..Tracker::default()
        }
    }

    /// The median of the intervals between the toggles kept in `edges` (the first change, the
    /// level becoming known, is not a toggle), if there are two toggles.
    pub fn median_interval_ns(&self) -> Option<u64> {
        let mut d: Vec<u64> = self
            .edges
            .windows(2)
            .skip(1)
            .map(|w| w[1].at_ns - w[0].at_ns)
            .collect();
        d.sort_unstable();
        d.get(d.len() / 2).copied()
    }
}

/// A simulated time for people: `23.4 µs` under 1 ms, `500.0 ms` under 10 s, `12.500 s` from
/// there.
pub fn time(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 10_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.3} s", ns as f64 / 1e9)
    }
}

/// Whether two intervals are the same, give or take `permille` thousandths (or 1 µs).
fn same(a: u64, b: u64, permille: u64) -> bool {
    a.abs_diff(b) <= (a.max(b) * permille / 1000).max(1000)
}

impl Tracker {
    /// The pin is at `level` from `at_ns` on (`None`: not driven); the lines to say, if any.
    pub fn level(&mut self, at_ns: u64, level: Option<bool>) -> Vec<String> {
        let Some(on) = level else {
            return Vec::new();
        };
        if self.level == Some(on) {
            return Vec::new();
        }
        let toggle = self.level.is_some();
        self.level = Some(on);
        self.changes += 1;
        if self.edges.len() < KEPT {
            self.edges.push(Edge { at_ns, on });
        }
        let prev = self.last_ns.unwrap_or(at_ns);
        let interval = self.last_ns.filter(|_| toggle).map(|l| at_ns - l);
        self.last_ns = Some(at_ns);
        let mut out = Vec::new();
        let said = format!("LED {} at {}", if on { "on" } else { "off" }, time(at_ns));
        match (self.mode, interval) {
            (Mode::Steady { interval_ns, .. }, Some(d)) if same(d, interval_ns, self.permille) => {
                self.count(at_ns)
            }
            (Mode::Fast { .. }, Some(d)) if d < FAST_NS => self.count(at_ns),
            (_, d) => {
                out.extend(self.end_run(prev));
                out.push(said);
                let Some(d) = d else { return out };
                self.intervals.push(d);
                let n = self.intervals.len();
                let last = &self.intervals[n.saturating_sub(3)..];
                if n >= 3 && last.iter().all(|i| same(*i, d, self.permille)) {
                    self.mode = Mode::Steady {
                        interval_ns: d,
                        from_ns: at_ns,
                        silent: 0,
                    };
                    self.run = Some(Steady {
                        changes: 4,
                        interval_ns: d,
                        from_ns: at_ns - last.iter().sum::<u64>(),
                        to_ns: at_ns,
                    });
                    self.keep_run();
                    out.push(format!(
                        "LED blinking: a change every {} (a period of {}); counting the changes \
                         instead of showing each",
                        time(d),
                        time(2 * d)
                    ));
                } else if n >= 3 && last.iter().all(|i| *i < FAST_NS) {
                    self.mode = Mode::Fast {
                        from_ns: at_ns,
                        silent: 0,
                    };
                    out.push(format!(
                        "LED changing fast (under {} apart): counting the changes instead of \
                         showing each",
                        time(FAST_NS)
                    ));
                }
            }
        }
        out
    }

    fn count(&mut self, at_ns: u64) {
        match &mut self.mode {
            Mode::Steady { silent, .. } | Mode::Fast { silent, .. } => *silent += 1,
            Mode::Each => {}
        }
        if let Some(run) = &mut self.run {
            run.changes += 1;
            run.to_ns = at_ns;
            run.interval_ns = (run.to_ns - run.from_ns) / (run.changes - 1);
        }
        self.keep_run();
    }

    fn keep_run(&mut self) {
        if let Some(run) = self.run {
            if self.steady.is_none_or(|s| s.changes <= run.changes) {
                self.steady = Some(run);
            }
        }
    }

    /// Says how a counted run (its last change at `until`) went, and goes back to saying each
    /// change.
    fn end_run(&mut self, until: u64) -> Option<String> {
        let mode = std::mem::replace(&mut self.mode, Mode::Each);
        if matches!(mode, Mode::Each) {
            return None;
        }
        self.run = None;
        self.intervals.clear();
        match mode {
            Mode::Each => None,
            Mode::Steady {
                interval_ns,
                from_ns,
                silent,
            } => Some(format!(
                "LED changed {silent} more times, every {} from {} to {}",
                time(interval_ns),
                time(from_ns),
                time(until)
            )),
            Mode::Fast { from_ns, silent } => Some(format!(
                "LED changed {silent} more times from {} to {}",
                time(from_ns),
                time(until)
            )),
        }
    }

    /// The lines that end what is being counted, at the end of the simulation.
    pub fn finish(&mut self) -> Vec<String> {
        let longest = self.steady;
        // The last line says how the longest steady run went: the run going on now needs no
        // line of its own if it is that one.
        let current_is_longest = self.run.is_some() && self.run == longest;
        let ended = self.end_run(self.last_ns.unwrap_or(0));
        self.steady = longest;
        let mut out: Vec<String> = ended.filter(|_| !current_is_longest).into_iter().collect();
        out.push(match (self.changes, self.steady) {
            (0, _) => "LED never changed".to_string(),
            (n, Some(s)) => format!(
                "LED changed {n} times; steadily every {} (a period of {}) from {} to {}",
                time(s.interval_ns),
                time(2 * s.interval_ns),
                time(s.from_ns),
                time(s.to_ns)
            ),
            (n, None) => format!("LED changed {n} times"),
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_steady_blink_is_counted_after_three_equal_intervals() {
        let mut t = Tracker::default();
        let mut said = Vec::new();
        // The pin becomes an output (low), then toggles every 499.84 ms, as the Uno blinky does.
        said.extend(t.level(0, None));
        said.extend(t.level(7_152_120, Some(false)));
        said.extend(t.level(7_152_560, Some(true)));
        for i in 1..=6u64 {
            said.extend(t.level(7_152_560 + i * 499_838_870, Some(i % 2 == 0)));
        }
        said.extend(t.finish());
        assert_eq!(
            said,
            [
                "LED off at 7.2 ms",
                "LED on at 7.2 ms",
                "LED off at 507.0 ms",
                "LED on at 1006.8 ms",
                "LED off at 1506.7 ms",
                "LED blinking: a change every 499.8 ms (a period of 999.7 ms); counting the \
                 changes instead of showing each",
                "LED changed 8 times; steadily every 499.8 ms (a period of 999.7 ms) from 7.2 ms \
                 to 3006.2 ms",
            ]
        );
        assert_eq!(t.changes, 8);
        let s = t.steady.unwrap();
        assert_eq!((s.changes, s.interval_ns), (7, 499_838_870));
    }

    #[test]
    fn host_clock_intervals_count_as_steady_within_their_tolerance_and_have_a_median() {
        // QEMU's LED as the host's clock sees it: 500 ms, give or take the host's scheduling.
        let times = [23, 24, 529, 1029, 1534, 2035, 2536];
        let run = |mut t: Tracker| {
            for (i, ms) in times.iter().enumerate() {
                t.level(ms * MS, Some(i % 2 == 1));
            }
            t.finish();
            t
        };
        // Toggle intervals 505, 500, 505, 501, 501 ms: the median is 501 ms.
        let wall = run(Tracker::with_tolerance(20));
        assert_eq!(wall.median_interval_ns(), Some(501 * MS));
        let steady = wall.steady.unwrap();
        assert_eq!((steady.changes, steady.interval_ns), (6, 502_400_000));
        // At a simulator's 0.1 %, no three intervals are the same.
        let exact = run(Tracker::default());
        assert_eq!(exact.steady, None);
        assert_eq!(exact.median_interval_ns(), Some(501 * MS));
    }

    #[test]
    fn fast_changes_are_counted_and_a_new_rhythm_is_said() {
        let mut t = Tracker::default();
        let mut said = Vec::new();
        said.extend(t.level(0, Some(false)));
        // 100 changes about 0.1 ms apart, irregularly (a dimmed LED, say).
        for i in 1..=100u64 {
            said.extend(t.level(i * MS / 10 + (i % 3) * 20_000, Some(i % 2 == 1)));
        }
        said.extend(t.level(500 * MS, Some(true)));
        said.extend(t.finish());
        assert_eq!(
            said,
            [
                "LED off at 0.0 µs",
                "LED on at 120.0 µs",
                "LED off at 240.0 µs",
                "LED on at 300.0 µs",
                "LED changing fast (under 10.0 ms apart): counting the changes instead of \
                 showing each",
                "LED changed 97 more times from 300.0 µs to 10.0 ms",
                "LED on at 500.0 ms",
                "LED changed 102 times",
            ]
        );
        assert_eq!(
            [time(23_400), time(7_152_120), time(12_500_000_000)],
            ["23.4 µs", "7.2 ms", "12.500 s"]
        );
        // Repeated levels are no changes.
        let mut t = Tracker::default();
        assert_eq!(t.level(5, Some(true)).len(), 1);
        assert!(t.level(6, Some(true)).is_empty());
        assert_eq!(t.changes, 1);
    }
}
