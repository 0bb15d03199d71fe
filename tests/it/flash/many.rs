//! Many boards at once: `nixflash flash --port A --port B` uploads with the real ravedude to two
//! simulated Unos in parallel, each then runs the firmware; one of them killed mid-upload fails
//! alone (the other finishes, the summary names the failure, exit 1). And what several boards
//! refuse before anything is flashed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::firmware;
use crate::common::process::{run_bounded, text};
use crate::common::sim::{measured_half_period, ravedude_missing, sim_lock, sim_missing, SimUno};
use crate::common::{measured, nixflash, skip};

/// `nixflash flash --no-build --elf <fw> --board uno` with these ports, in a fresh folder.
fn flash_many(dir: &std::path::Path, ports: &[&str]) -> Command {
    let mut c = nixflash();
    c.args(["flash", "--no-build", "--board", "uno", "--elf"])
        .arg(&firmware().elf)
        .current_dir(dir);
    for p in ports {
        c.args(["--port", p]);
    }
    c
}

/// The half period the firmware blinks with in `sim`, after `done`.
fn blinks(sim: &mut SimUno, done: Instant) {
    let fw = firmware();
    let half = measured_half_period(sim, done, &fw.what, fw.half_period);
    assert!(
        (half - fw.half_period).abs() < 0.005 * fw.half_period,
        "{}: PB5 toggles every {half} s, but {} toggles it every {} s",
        sim.pty,
        fw.what,
        fw.half_period
    );
}

#[test]
fn two_simulated_unos_are_flashed_at_once() {
    let name = "two_simulated_unos_are_flashed_at_once";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    firmware();
    // The lock keeps other simulated Unos away; this test runs its two under it.
    let _serial = sim_lock();
    let started = Instant::now();
    let (mut a, mut b) = (SimUno::start(), SimUno::start());
    let dir = tempfile::tempdir().unwrap();
    let o = run_bounded(
        flash_many(dir.path(), &[&a.pty, &b.pty]).args([
            "--set",
            "name=desk-{index}",
            "--monitor",
            "--duration",
            "3",
        ]),
        Duration::from_secs(180),
    );
    let done = Instant::now();
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{}\n{stdout}\n{stderr}", o.status);
    // Each board got its own settings, below the bootloader, with the firmware.
    for (i, sim) in [&a, &b].iter().enumerate() {
        let line = format!("Settings {}: name (--set) at 0x7600, in a ", sim.pty);
        assert!(stderr.contains(&line), "no `{line}`:\n{stderr}");
        assert!(stderr.contains(&format!("board-{}.elf", i + 1)), "{stderr}");
    }
    for sim in [&a, &b] {
        let row = stderr
            .lines()
            .find(|l| l.starts_with(&format!("{} ", sim.pty)))
            .unwrap_or_else(|| panic!("no summary row for {}:\n{stderr}", sim.pty));
        assert!(row.contains(" flashed "), "{row}\n{stderr}");
        // Its stages, with avrdude's percentages.
        for stage in ["connecting", "writing 100%", "verifying 100%", "flashed"] {
            let line = format!("Board {}: {stage}", sim.pty);
            assert!(stderr.contains(&line), "no `{line}`:\n{stderr}");
        }
    }
    assert!(
        stderr.contains("to 2 boards (Arduino Uno), 2 at a time"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("Flasher ravedude").count(), 1, "{stderr}");
    blinks(&mut a, done);
    blinks(&mut b, done);
    // One monitor of both, each line prefixed with its board's name. Board A says desk-1, board
    // B desk-2: the same firmware, each board's own name.
    for n in [1, 2] {
        let line = format!("[desk-{n}] Hello from desk-{n} on the Arduino Uno!");
        assert!(
            stdout.lines().any(|l| l == line),
            "no `{line}` in:\n{stdout}"
        );
    }
    assert!(stderr.contains("--- Watching 2 boards"), "{stderr}");
    measured(&format!(
        "{name}: {:.1} s (flash {:.1} s)",
        started.elapsed().as_secs_f64(),
        (done - started).as_secs_f64()
    ));
}

#[test]
fn one_simulated_uno_killed_mid_upload_fails_alone() {
    let name = "one_simulated_uno_killed_mid_upload_fails_alone";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    firmware();
    let _serial = sim_lock();
    let started = Instant::now();
    let (mut a, b) = (SimUno::start(), SimUno::start());
    let (pty_a, pty_b) = (a.pty.clone(), b.pty.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut child = flash_many(dir.path(), &[&pty_a, &pty_b])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut b = Some(b);
    let mut stderr = String::new();
    let mut killed_at = None;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if b.is_some() && line.contains(&format!("Board {pty_b}: writing")) {
            // Board B's simulator goes away in the middle of its upload, as if unplugged.
            drop(b.take());
            killed_at = Some(Instant::now());
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let status = child.wait().unwrap();
    let done = Instant::now();
    assert!(
        killed_at.is_some(),
        "board B never started writing:\n{stderr}"
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    let row = |pty: &str| {
        stderr
            .lines()
            .find(|l| l.starts_with(&format!("{pty} ")))
            .unwrap_or_else(|| panic!("no summary row for {pty}:\n{stderr}"))
            .to_string()
    };
    assert!(row(&pty_a).contains(" flashed "), "{stderr}");
    assert!(
        row(&pty_b).contains(&format!("FAILED: {pty_b} went away while flashing")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("error: 1 of 2 boards failed: {pty_b} (")),
        "{stderr}"
    );
    blinks(&mut a, done);
    measured(&format!(
        "{name}: {:.1} s (the failure noticed {:.1} s after the kill)",
        started.elapsed().as_secs_f64(),
        (done - killed_at.unwrap()).as_secs_f64()
    ));
}

/// What several boards refuse, each in one line and before anything is built or flashed.
#[test]
fn several_boards_refuse_bad_input_before_flashing() {
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("fw.elf");
    std::fs::write(&elf, b"not flashed").unwrap();
    let run_code = |args: &[&str], code: i32| {
        let o = run_bounded(
            nixflash()
                .args(["flash", "--no-build", "--board", "uno", "--elf"])
                .arg(&elf)
                .args(args)
                .current_dir(dir.path()),
            Duration::from_secs(30),
        );
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(!err.contains("Flasher") && !err.contains("Board "), "{err}");
        err
    };
    let run = |args: &[&str]| run_code(args, 1);
    let first = |err: &str| err.lines().next().unwrap_or_default().to_string();
    let err = run(&["--port", "/dev/null", "--port", "/dev/null"]);
    assert_eq!(
        first(&err),
        "error: the port /dev/null is given twice (--port): a board is flashed once",
        "{err}"
    );
    let err = run(&["--all", "--port", "/dev/null"]);
    assert!(
        first(&err).contains("it cannot be given with --port"),
        "{err}"
    );
    let err = run(&[
        "--monitor",
        "--log",
        "session.log",
        "--port",
        "/dev/a",
        "--port",
        "/dev/b",
    ]);
    assert_eq!(
        first(&err),
        "error: --log keeps one board's session: with several boards, every board's lines are on \
         stdout",
        "{err}"
    );
    // {index} numbers the boards of a run of several: one board has none.
    let err = run(&["--set", "name=desk-{index}", "--port", "/dev/a"]);
    assert!(first(&err).contains("{index}"), "{err}");
    // clap's usage error.
    let err = run_code(&["--all", "--jobs", "0"], 2);
    assert!(err.contains("--jobs"), "{err}");
    // With no Uno connected (as on CI), --all says what is connected.
    let unos = ["/dev/ttyACM0", "/dev/ttyUSB0"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if !unos {
        let err = run(&["--all"]);
        assert!(
            first(&err).starts_with("error: no serial port found for the Arduino Uno (uno)"),
            "{err}"
        );
        assert!(err.contains("seen:"), "{err}");
    }
}
