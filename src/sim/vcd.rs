//! Value change dump (VCD, IEEE 1364) files: simavr's trace read as it is written, the trace
//! `--vcd` writes for GTKWave or PulseView, and the input trace that ends a simulation.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{Context, Result};

/// One value change: a signal (by the name the trace gave it) took `value` (`None`: x or z)
/// at `time_ns` nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub time_ns: u64,
    pub signal: String,
    pub value: Option<u64>,
}

/// Reads a VCD trace line by line as it arrives.
#[derive(Debug)]
pub struct Reader {
    /// Signal names by identifier code.
    names: HashMap<String, String>,
    /// Nanoseconds per time unit.
    unit_ns: u64,
    time: u64,
    /// Inside `$timescale` (its value may be on the next line).
    in_timescale: bool,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            names: HashMap::new(),
            unit_ns: 1,
            time: 0,
            in_timescale: false,
        }
    }
}

impl Reader {
    /// The changes one line of the trace holds.
    pub fn line(&mut self, line: &str) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        let mut words = line.split_whitespace().peekable();
        while let Some(w) = words.next() {
            if self.in_timescale {
                if w == "$end" {
                    self.in_timescale = false;
                } else {
                    let unit = match words.peek() {
                        Some(u) if w.bytes().all(|b| b.is_ascii_digit()) && *u != "$end" => {
                            format!("{w}{}", words.next().unwrap_or_default())
                        }
                        _ => w.to_string(),
                    };
                    self.unit_ns = timescale_ns(&unit)?;
                }
                continue;
            }
            match w {
                "$timescale" => self.in_timescale = true,
                "$var" => {
                    // $var <type> <width> <code> <name> $end
                    let v: Vec<&str> = words.by_ref().take_while(|w| *w != "$end").collect();
                    if let [_, _, code, name, ..] = v.as_slice() {
                        self.names.insert(code.to_string(), name.to_string());
                    }
                }
                _ if w.starts_with('#') => {
                    let t: u64 = w[1..]
                        .parse()
                        .with_context(|| format!("bad VCD time `{w}`"))?;
                    self.time = t.saturating_mul(self.unit_ns);
                }
                _ if w.starts_with(['b', 'B', 'r', 'R']) => {
                    let code = words.next().unwrap_or_default();
                    let value = if w.starts_with(['b', 'B']) {
                        u64::from_str_radix(&w[1..], 2).ok()
                    } else {
                        None
                    };
                    self.change(code, value, &mut out);
                }
                _ if w.starts_with(['0', '1', 'x', 'X', 'z', 'Z']) && w.len() > 1 => {
                    let value = match &w[..1] {
                        "0" => Some(0),
                        "1" => Some(1),
                        _ => None,
                    };
                    self.change(&w[1..], value, &mut out);
                }
                // Other keywords ($scope, $dumpvars, $end ...) hold nothing we need.
                _ => {}
            }
        }
        Ok(out)
    }

    fn change(&self, code: &str, value: Option<u64>, out: &mut Vec<Change>) {
        if let Some(name) = self.names.get(code) {
            out.push(Change {
                time_ns: self.time,
                signal: name.clone(),
                value,
            });
        }
    }
}

/// Nanoseconds in a `$timescale` (`10ns`, `1us`).
fn timescale_ns(s: &str) -> Result<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s[..digits]
        .parse()
        .with_context(|| format!("bad VCD timescale `{s}`"))?;
    let per = match &s[digits..] {
        "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" => 1_000,
        "ns" => 1,
        unit => anyhow::bail!("VCD timescale unit `{unit}` is finer than nanoseconds"),
    };
    Ok(n * per)
}

/// The input trace that ends a simavr run after `duration_us` simulated microseconds: simavr
/// stops when the last change of an input trace has been played. Its one signal is named so that
/// simavr connects it to nothing (a name of fewer than four letters is no IRQ).
pub fn stop_input(duration_us: u64) -> String {
    format!(
        "$timescale 1us $end\n$scope module nixflash $end\n$var wire 1 ! end $end\n$upscope $end\n\
         $enddefinitions $end\n#0\n0!\n#{}\n1!\n",
        duration_us.max(1)
    )
}

/// A VCD trace written as changes come, in time order.
pub struct Writer<W: Write> {
    out: W,
    widths: Vec<u32>,
    time: Option<u64>,
}

/// The identifier code of the `i`th signal.
fn code(i: usize) -> char {
    char::from(b'!' + i as u8)
}

impl<W: Write> Writer<W> {
    /// Writes the header: one module, `signals` as (name, width in bits, comment), times in ns.
    pub fn new(mut out: W, scope: &str, signals: &[(&str, u32)], comment: &str) -> Result<Self> {
        writeln!(out, "$comment\n  {comment}\n$end")?;
        writeln!(out, "$timescale 1ns $end\n$scope module {scope} $end")?;
        for (i, (name, width)) in signals.iter().enumerate() {
            writeln!(out, "$var wire {width} {} {name} $end", code(i))?;
        }
        writeln!(out, "$upscope $end\n$enddefinitions $end\n$dumpvars")?;
        for (i, (_, width)) in signals.iter().enumerate() {
            write_value(&mut out, i, *width, None)?;
        }
        writeln!(out, "$end")?;
        Ok(Writer {
            out,
            widths: signals.iter().map(|s| s.1).collect(),
            time: None,
        })
    }

    /// Signal `i` takes `value` (`None`: z) at `time_ns`, which is not before the last change.
    pub fn change(&mut self, time_ns: u64, i: usize, value: Option<u64>) -> Result<()> {
        if self.time != Some(time_ns) {
            writeln!(self.out, "#{time_ns}")?;
            self.time = Some(time_ns);
        }
        write_value(&mut self.out, i, self.widths[i], value)
    }

    /// Ends the trace at `time_ns` and flushes it.
    pub fn finish(mut self, time_ns: u64) -> Result<W> {
        if self.time.is_none_or(|t| t < time_ns) {
            writeln!(self.out, "#{time_ns}")?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_value(out: &mut impl Write, i: usize, width: u32, value: Option<u64>) -> Result<()> {
    match (width, value) {
        (1, Some(v)) => writeln!(out, "{}{}", v & 1, code(i))?,
        (1, None) => writeln!(out, "z{}", code(i))?,
        (_, Some(v)) => writeln!(out, "b{v:0w$b} {}", code(i), w = width as usize)?,
        (_, None) => writeln!(out, "bz {}", code(i))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What simavr 1.6 and 1.7 write (sim_vcd_file.c).
    const SIMAVR: &str = "$timescale 10ns $end\n$scope module logic $end\n\
        $var wire 8 ! uart $end\n$var wire 1 \" led $end\n$upscope $end\n$enddefinitions $end\n\
        $dumpvars\nbxxxxxxxx !\nx\"\n$end\n#2681\nb01001000 !\n#21431\nb01101100 !\n#40181\n\
        b01101100 !\n#715212\n0\"\n#715256\n1\"\n#50699143\n0\"\n";

    #[test]
    fn simavr_traces_are_read_line_by_line() {
        let mut r = Reader::default();
        let mut all = Vec::new();
        for line in SIMAVR.lines() {
            all.extend(r.line(line).unwrap());
        }
        let ch = |t: u64, s: &str, v: Option<u64>| Change {
            time_ns: t,
            signal: s.into(),
            value: v,
        };
        assert_eq!(
            all,
            [
                ch(0, "uart", None),
                ch(0, "led", None),
                ch(26_810, "uart", Some(b'H'.into())),
                ch(214_310, "uart", Some(b'l'.into())),
                // The same byte again is a change too: each is a write.
                ch(401_810, "uart", Some(b'l'.into())),
                ch(7_152_120, "led", Some(0)),
                ch(7_152_560, "led", Some(1)),
                ch(506_991_430, "led", Some(0)),
            ]
        );
        let mut split = Reader::default();
        split.line("$timescale").unwrap();
        split.line("  1 us").unwrap();
        split.line("$end").unwrap();
        assert_eq!(split.unit_ns, 1000);
        assert!(Reader::default().line("$timescale 1ps $end").is_err());
    }

    #[test]
    fn written_traces_read_back() {
        let w = Writer::new(Vec::new(), "uno", &[("led", 1), ("uart", 8)], "test").unwrap();
        let mut w = w;
        w.change(5, 0, Some(1)).unwrap();
        w.change(5, 1, Some(0x41)).unwrap();
        w.change(9, 1, None).unwrap();
        let text = String::from_utf8(w.finish(20).unwrap()).unwrap();
        assert!(
            text.contains("#5\n1!\nb01000001 \"\n#9\nbz \"\n#20\n"),
            "{text}"
        );
        let mut r = Reader::default();
        let changes: Vec<Change> = text
            .lines()
            .flat_map(|l| r.line(l).unwrap())
            .filter(|c| c.time_ns > 0)
            .collect();
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[1].value, Some(0x41));
        let stop = stop_input(3_000_000);
        assert!(stop.ends_with("#0\n0!\n#3000000\n1!\n"), "{stop}");
    }
}
