//! RP2040 firmware in the rp2040js emulator (tests/rp2040/run.mjs, the boot ROM from
//! ../shared/fixtures), and the checks every Pico blinky must pass there: the greeting on UART0
//! first, then GPIO25 toggling every 500 ms ± 1 %, each change announced.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::process::{run_bounded, text};
use super::{offline, on_path, repo, skip};

/// Runs tests/rp2040/run.mjs on `uf2` for `millis` simulated milliseconds: its events (one JSON
/// object per line, see run.mjs), or None after [`skip`].
pub fn run(test: &str, uf2: &Path, millis: u32) -> Option<Vec<serde_json::Value>> {
    let dir = repo().join("tests/rp2040");
    let rom = offline::shared().map(|s| s.join("fixtures/rp2040-bootrom-b1.bin"));
    let why = match &rom {
        Err(why) => Some(why.clone()),
        Ok(rom) if !rom.is_file() => Some(format!("{} is missing", rom.display())),
        Ok(_) if !on_path("node") => Some("node is not installed".into()),
        Ok(_) if !dir.join("node_modules/rp2040js").is_dir() => Some(format!(
            "rp2040js is not installed (npm ci --prefix {})",
            dir.display()
        )),
        Ok(_) => None,
    };
    if let Some(why) = why {
        skip(test, &why);
        return None;
    }
    let o = run_bounded(
        Command::new("node")
            .arg(dir.join("run.mjs"))
            .arg(rom.unwrap())
            .arg(uf2)
            .arg(millis.to_string()),
        Duration::from_secs(300),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "run.mjs: {out}{err}");
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let end = events.last().unwrap();
    assert_eq!(
        end["end"].as_f64().map(|t| t >= f64::from(millis) * 1e6),
        Some(true)
    );
    Some(events)
}

/// Checks what a blinky did in [`run`]: `greeting` is the first line on UART0, every other line
/// says GPIO25's level, and GPIO25, once set up as an output (low), toggles at least five times,
/// each 500 ms ± 1 % after the one before. Returns the mean time between toggles, in ms.
pub fn blinks(events: &[serde_json::Value], greeting: &str) -> f64 {
    let lines: Vec<&str> = events.iter().filter_map(|e| e["line"].as_str()).collect();
    assert_eq!(lines.first().copied(), Some(greeting), "{lines:?}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| *l == "GPIO25 is high" || *l == "GPIO25 is low"),
        "{lines:?}"
    );
    let toggles: Vec<(f64, i64)> = events
        .iter()
        .filter(|e| e["gpio"] == 25)
        .map(|e| (e["t"].as_f64().unwrap(), e["level"].as_i64().unwrap()))
        .collect();
    assert_eq!(toggles.first().map(|t| t.1), Some(0), "{toggles:?}");
    assert!(
        toggles.windows(2).all(|w| w[0].1 != w[1].1),
        "GPIO25 did not alternate: {toggles:?}"
    );
    // The first is the pin set up as an output (low); then it toggles.
    let changes: Vec<f64> = toggles[1..].iter().map(|(t, _)| *t).collect();
    assert!(changes.len() >= 5, "{toggles:?}");
    let halves: Vec<f64> = changes.windows(2).map(|w| (w[1] - w[0]) / 1e6).collect();
    for h in &halves {
        assert!(
            (h - 500.0).abs() < 5.0,
            "GPIO25 toggled after {h} ms: {halves:?}"
        );
    }
    halves.iter().sum::<f64>() / halves.len() as f64
}
