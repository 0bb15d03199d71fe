//! The simulated Arduino Uno (tests/sim/sim-uno.c): simavr running Arduino's bootloader, its
//! UART on a pty that real ravedude/avrdude upload through, PB5 (the LED) reported as it changes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::process::{run_bounded, text};
use super::{on_path, repo, shared};

pub const BOOTLOADER: &str =
    "/usr/share/arduino/hardware/arduino/avr/bootloaders/atmega/ATmegaBOOT_168_atmega328.hex";
pub const F_CPU: f64 = 16e6;

/// The simulated Unos of one test at a time, in every test process of the run: each runs in real
/// time and uses a core. A test runs one under it, or two (tests/it/flash/many.rs, the
/// many-boards bench), which the lock keeps from meeting any other. Held until dropped.
pub fn sim_lock() -> shared::Held {
    shared::lock("sim-uno")
}

/// Why the simulated Uno cannot run here, if it cannot.
pub fn sim_missing() -> Option<String> {
    for tool in ["cc", "avr-gcc"] {
        if !on_path(tool) {
            return Some(format!("{tool} is not on PATH"));
        }
    }
    if !Path::new("/usr/include/simavr/sim_avr.h").exists() {
        return Some("libsimavr-dev is not installed (/usr/include/simavr)".into());
    }
    if !Path::new(BOOTLOADER).exists() {
        return Some(format!(
            "{BOOTLOADER} is missing (Debian's arduino-core-avr)"
        ));
    }
    None
}

/// Why ravedude cannot flash here, if it cannot.
pub fn ravedude_missing() -> Option<String> {
    for tool in ["ravedude", "avrdude"] {
        if !on_path(tool) {
            return Some(format!(
                "{tool} is not on PATH (cargo install ravedude --locked; apt install avrdude)"
            ));
        }
    }
    None
}

/// Compiles tests/sim/sim-uno.c once per test run.
pub fn sim_binary() -> PathBuf {
    let made = shared::once("sim-uno", || {
        let out = shared::run_dir().join("sim-uno");
        let o = run_bounded(
            Command::new("cc")
                .args(["-O2", "-Wall", "-o"])
                .arg(&out)
                .arg(repo().join("tests/sim/sim-uno.c"))
                .args(["-lsimavr", "-lelf"]),
            Duration::from_secs(120),
        );
        assert!(
            o.status.success(),
            "compiling sim-uno failed: {:?}",
            text(&o)
        );
        Ok(out)
    });
    made.unwrap()
}

/// A running simulated Uno; killed when dropped.
pub struct SimUno {
    child: Child,
    /// sim-uno's lines, each with the time it was read.
    lines: Receiver<(Instant, String)>,
    pub pty: String,
    /// Every `pb5` report so far: (simulated seconds, level, when it was received).
    pub pb5: Vec<(f64, u8, Instant)>,
}

impl SimUno {
    pub fn start() -> SimUno {
        let mut child = Command::new(sim_binary())
            .args(["--bootloader", BOOTLOADER, "--max-wall-ms", "180000"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start sim-uno");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut sim = SimUno {
            child,
            lines,
            pty: String::new(),
            pb5: Vec::new(),
        };
        let (_, first) = sim
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("sim-uno printed no pty");
        sim.pty = first
            .strip_prefix("pty ")
            .unwrap_or_else(|| panic!("sim-uno's first line is not `pty ...`: {first}"))
            .to_string();
        sim
    }

    /// Presses the board's reset button (sim-uno's SIGUSR1): it starts in the bootloader again,
    /// its flash kept, as a real Uno does when avrdude drops DTR (a pty has none).
    pub fn reset(&self) {
        let o = Command::new("kill")
            .args(["-USR1", &self.child.id().to_string()])
            .output()
            .expect("cannot run kill");
        assert!(o.status.success(), "kill -USR1: {o:?}");
    }

    /// Reads reports until `until` says stop or `limit` passes; false on timeout.
    pub fn watch(
        &mut self,
        limit: Duration,
        until: impl Fn(&[(f64, u8, Instant)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if until(&self.pb5) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((when, line)) => {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    match f.as_slice() {
                        ["pb5", cycle, _, level] => {
                            let t = cycle.parse::<f64>().unwrap() / F_CPU;
                            self.pb5.push((t, level.parse().unwrap(), when));
                        }
                        ["exit", ..] => panic!("the simulated Uno stopped: {line}"),
                        _ => panic!("unexpected line from sim-uno: {line}"),
                    }
                }
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => panic!("sim-uno died"),
            }
        }
    }
}

impl Drop for SimUno {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// After a flash that finished at `done`: waits for 7 PB5 changes reported after it and returns
/// the time between changes, checking that the firmware keeps a steady rhythm.
pub fn measured_half_period(sim: &mut SimUno, done: Instant, what: &str, expected: f64) -> f64 {
    let after = |r: &[(f64, u8, Instant)]| r.iter().filter(|e| e.2 >= done).count();
    let limit = Duration::from_secs_f64(10.0 + 10.0 * expected);
    assert!(
        sim.watch(limit, |r| after(r) >= 7),
        "PB5 changed only {} times within {limit:?} of the flash: {:?}",
        after(&sim.pb5),
        sim.pb5
    );
    let app: Vec<f64> = sim
        .pb5
        .iter()
        .filter(|e| e.2 >= done)
        .map(|e| e.0)
        .collect();
    let gaps: Vec<f64> = app.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    for g in &gaps {
        assert!(
            (g - mean).abs() < 0.001 * mean,
            "PB5 does not toggle steadily: gaps {gaps:?} s"
        );
    }
    crate::common::measured(&format!(
        "{} toggles PB5 every {:.4} ms (period {:.4} ms) in the simulated Uno",
        what,
        mean * 1e3,
        2.0 * mean * 1e3
    ));
    mean
}
