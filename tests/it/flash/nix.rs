//! `nixflash flash` building with Nix first (the fixture flake of tests/it/build.rs), and
//! `flash --monitor`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{blink_firmware, firmware, new_project};
use crate::common;
use crate::common::process::{collect, lossy, run_bounded, text, Spawned};
use crate::common::sim::{measured_half_period, ravedude_missing, sim_lock, sim_missing, SimUno};
use crate::common::{nixflash, on_path, skip};

/// The fixture flake of tests/it/build.rs (tests/fixtures/project: package `fixture`, board
/// "uno", derivations that run /bin/sh and need no nixpkgs) in a temporary folder, set up by
/// `common::NixFixture` (its stand-in rust-overlay next to it, a nonce so that Nix really
/// builds, a git repository with everything committed), with `elf` as the firmware.elf its flake
/// installs as bin/fixture.elf.
fn nix_fixture_project(elf: &Path) -> (tempfile::TempDir, PathBuf) {
    let f = common::NixFixture::new("nixflash-flash-nix-test-");
    let manifest = std::fs::read_to_string(f.dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("name = \"fixture\"") && manifest.contains("board = \"uno\""),
        "the fixture is no longer the Uno package `fixture`:\n{manifest}"
    );
    std::fs::copy(elf, f.dir.join("firmware.elf")).unwrap();
    f.commit_all();
    (f.tmp, f.dir)
}

/// `.text + .data` of `elf` by `avr-size -A`: the flash the size report must show.
fn avr_size_flash(elf: &Path) -> u64 {
    let o = run_bounded(
        Command::new("avr-size").arg("-A").arg(elf),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "avr-size failed: {:?}", text(&o));
    text(&o)
        .0
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?;
            let size: u64 = f.next()?.parse().ok()?;
            [".text", ".data"].contains(&name).then_some(size)
        })
        .sum()
}

/// `nixflash flash --port <pty>` with neither --no-build nor --elf: the firmware is built by real
/// Nix from the fixture flake (its ELF is blink.c's), then uploaded by the real ravedude to the
/// simulated Uno, where it blinks.
#[test]
fn flash_builds_with_nix_then_uploads_to_a_simulated_uno() {
    let name = "flash_builds_with_nix_then_uploads_to_a_simulated_uno";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    for (tool, install) in [
        ("nix", "../shared/tools/install-nix.sh"),
        ("git", "apt install git"),
    ] {
        if !on_path(tool) {
            return skip(name, &format!("{tool} is not on PATH ({install})"));
        }
    }
    let fw = blink_firmware();
    let (_tmp, project) = nix_fixture_project(&fw.elf);
    let _serial = sim_lock();
    let mut sim = SimUno::start();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--port", &sim.pty])
            .current_dir(&project),
        Duration::from_secs(170),
    );
    let done = Instant::now();
    let (stdout, stderr) = text(&o);
    assert!(
        o.status.success(),
        "nixflash flash failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        o.status
    );

    // Nix built it: the build's own line, the builder's output, the size report.
    assert!(
        stderr.contains("Building fixture for the Arduino Uno with nix…")
            && stderr.contains("fixture> installing the firmware"),
        "nix did not build the firmware:\n{stderr}"
    );
    let size = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("Size flash ") && l.contains(" B / 32256 B ("))
        .unwrap_or_else(|| panic!("no `Size flash … B / 32256 B` line:\n{stderr}"));
    if on_path("avr-size") {
        let want = format!("Size flash {} B / 32256 B (", avr_size_flash(&fw.elf));
        assert!(size.contains(&want), "`{size}` is not `{want}…`");
    }

    // The `result` link points at what was built, which is the fixture's ELF, and that is what
    // ravedude got.
    let out = std::fs::read_link(project.join("result"))
        .unwrap_or_else(|e| panic!("no result link in {}: {e}\n{stderr}", project.display()));
    assert!(out.starts_with("/nix/store/"), "{}", out.display());
    let built = out.join("bin/fixture.elf");
    assert_eq!(
        std::fs::read(&built).unwrap(),
        std::fs::read(&fw.elf).unwrap(),
        "the built ELF is not the fixture's"
    );
    let want = format!("-P {} {}", sim.pty, built.display());
    assert!(
        stderr.contains("Running CARGO_MANIFEST_DIR=") && stderr.contains(&want),
        "ravedude was not run on the built ELF (`{want}`):\n{stderr}"
    );

    // avrdude verified the upload, and the board runs the firmware.
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("bytes of flash verified"),
        "avrdude did not verify the upload:\n{all}"
    );
    assert!(
        stderr.contains(&format!(
            "Flashed {} to the Arduino Uno on {}.",
            built.display(),
            sim.pty
        )),
        "{stderr}"
    );
    let half = measured_half_period(&mut sim, done, &fw.what, fw.half_period);
    assert!(
        (half - fw.half_period).abs() < 0.005 * fw.half_period,
        "PB5 toggles every {half} s, but {} toggles it every {} s",
        fw.what,
        fw.half_period
    );
}

/// `nixflash flash --monitor` opens nixflash's own monitor on the port it flashed through: the
/// greeting the new firmware prints shows on stdout, and SIGINT ends the session with exit code 0.
#[test]
fn flash_monitor_shows_the_greeting_after_flashing() {
    let name = "flash_monitor_shows_the_greeting_after_flashing";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    let fw = firmware();
    let (_dir, project) = new_project("fw", "uno");
    let _serial = sim_lock();
    let sim = SimUno::start();
    let started = Instant::now();
    let mut p = Spawned::new(
        nixflash()
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            .args(["--port", &sim.pty, "--monitor"])
            .current_dir(&project)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let (out, t_out) = collect(p.child.stdout.take().unwrap());
    let (err, t_err) = collect(p.child.stderr.take().unwrap());

    // Flashing takes ~10 s at the simulated Uno's real-time pace; the greeting follows at once.
    let limit = Duration::from_secs(150);
    loop {
        if lossy(&out).contains(&fw.greeting) {
            break;
        }
        if let Some(status) = p.try_wait() {
            panic!(
                "nixflash ended ({status}) before the greeting showed\nstdout:\n{}\nstderr:\n{}",
                lossy(&out),
                lossy(&err)
            );
        }
        if started.elapsed() > limit {
            p.kill_group();
            panic!(
                "no greeting {:?} on nixflash's stdout within {limit:?}; killed\nstdout:\n{}\n\
                 stderr:\n{}",
                fw.greeting,
                lossy(&out),
                lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // Ctrl-C, as `kill -INT` sends it: the monitor ends cleanly.
    p.signal(libc::SIGINT);
    let Some(status) = p.wait_for(Duration::from_secs(20)) else {
        p.kill_group();
        panic!(
            "nixflash did not end within 20 s of SIGINT; killed\nstdout:\n{}\nstderr:\n{}",
            lossy(&out),
            lossy(&err)
        );
    };
    let (_, _) = (t_out.join(), t_err.join());
    let (stdout, stderr) = (lossy(&out), lossy(&err));
    assert_eq!(
        status.code(),
        Some(0),
        "exit code after SIGINT in the monitor\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(&fw.greeting),
        "the greeting {:?} is not on stdout: {stdout:?}",
        fw.greeting
    );
    // Flashed (and verified) first, then the monitor on the same port, closed by the signal.
    let flashed = stderr
        .find(&format!(
            "Flashed {} to the Arduino Uno on {}.",
            fw.elf.display(),
            sim.pty
        ))
        .unwrap_or_else(|| panic!("no `Flashed …` line:\n{stderr}"));
    let connected = stderr
        .find(&format!("--- Connected to {} at 57600 baud", sim.pty))
        .unwrap_or_else(|| panic!("the monitor did not connect to {}:\n{stderr}", sim.pty));
    assert!(
        flashed < connected,
        "the monitor opened before flashing:\n{stderr}"
    );
    // The monitor reads the firmware it was just given.
    let decoding = format!("--- Decoding with {}: ", fw.elf.display());
    assert!(stderr.contains(&decoding), "no `{decoding}`:\n{stderr}");
    assert!(
        stderr.contains("bytes of flash verified"),
        "avrdude did not verify the upload:\n{stderr}"
    );
    assert!(
        stderr.contains("--- Monitor closed (interrupted)"),
        "the monitor did not say it was interrupted:\n{stderr}"
    );
    assert!(
        !stderr.lines().any(|l| l.starts_with("error: ")),
        "nixflash reported an error:\n{stderr}"
    );
}
