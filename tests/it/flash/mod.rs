//! `nixflash flash` with real flashers and no boards: a simulated Arduino Uno (tests/sim/sim-uno.c,
//! simavr running Arduino's bootloader, its UART on a pty) receives uploads from the real ravedude
//! and avrdude, then runs the firmware, whose LED period and greeting are checked.
//!
//! Needs: cc, libsimavr-dev (with libelf-dev), avr-gcc, avrdude, Arduino's bootloaders
//! (arduino-core-avr), ravedude (`cargo install ravedude --locked`); Nix and git for the tests
//! that build with the flake (tests/fixtures/project, as tests/it/build.rs uses it) or take its
//! flasher; espflash, ld.lld and ../shared/tools/firmware-env.sh for the ESP32-C3 test. Tests
//! whose tools are missing fail, saying SKIPPED and why (see `common::skip`).
//!
//! The uploaded firmware is the rendered Uno project compiled with cargo (arduino-hal from the
//! avr-hal bundle in ../shared/fixtures); without ../shared it is tests/fixtures/firmware.
//!
//! By area: [`upload`] (uploads, and which flasher), [`refused`] (what flash refuses, and how it
//! says so), [`esp`] (espflash and the ESP32-C3 project), [`nix`] (building with Nix first, and
//! `--monitor`).

mod avr_settings;
mod elf;
mod esp;
mod many;
mod nix;
mod probe;
mod refused;
mod upload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::firmware::{build, Kind};
use crate::common::process::{run_bounded, text};
use crate::common::sim::{measured_half_period, SimUno};
use crate::common::{nixflash, repo, skip};

/// `nixflash new <name> --board <board> --no-git` in a fresh temporary folder (outside this
/// repository, so that Nix sees a plain folder and not a git checkout).
pub(super) fn new_project(name: &str, board: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("nixflash-flash-test-")
        .tempdir()
        .unwrap();
    let o = run_bounded(
        nixflash()
            .args(["new", name, "--board", board, "--no-git"])
            .current_dir(dir.path()),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "nixflash new failed: {:?}", text(&o));
    let root = dir.path().join(name);
    (dir, root)
}

// ---------------------------------------------------------------------------------------------
// The firmware.

/// A firmware ELF for the Uno and what it does.
pub(super) struct Firmware {
    pub elf: PathBuf,
    /// Time between two PB5 changes, in seconds.
    pub half_period: f64,
    pub greeting: String,
    pub what: String,
}

/// The rendered Uno project compiled with cargo (`common::firmware`, arduino-hal from the avr-hal
/// bundle in ../shared/fixtures); without ../shared, tests/fixtures/firmware/blink.c compiled with
/// avr-gcc. Built once per test run.
pub(super) fn firmware() -> &'static Firmware {
    static FW: OnceLock<Firmware> = OnceLock::new();
    match build(Kind::Uno) {
        Ok(built) => FW.get_or_init(|| Firmware {
            elf: built.elf,
            half_period: 0.500,
            greeting: "Hello from fw on the Arduino Uno!".into(),
            what: "the rendered Uno project (arduino-hal)".into(),
        }),
        Err(why) => {
            skip(
                "uploading the rendered arduino-hal project",
                &format!("{why}; uploading the avr-gcc fixture tests/fixtures/firmware/blink.c"),
            );
            blink_firmware()
        }
    }
}

/// tests/fixtures/firmware/blink.c compiled with avr-gcc, once per test run.
pub(super) fn blink_firmware() -> &'static Firmware {
    static FW: OnceLock<Firmware> = OnceLock::new();
    FW.get_or_init(|| {
        let elf = crate::common::shared::once("blink.elf", || Ok(c_firmware())).unwrap();
        Firmware {
            elf,
            half_period: 0.250,
            greeting: "Hello from the nixflash test firmware!".into(),
            what: "the avr-gcc fixture blink.c".into(),
        }
    })
}

/// tests/fixtures/firmware/blink.c compiled with avr-gcc into this run's folder.
fn c_firmware() -> PathBuf {
    let elf = crate::common::shared::run_dir().join("blink.elf");
    let o = run_bounded(
        Command::new("avr-gcc")
            .args([
                "-mmcu=atmega328p",
                "-DF_CPU=16000000UL",
                "-DBLINK_HALF_PERIOD_MS=250",
                "-Os",
                "-Wall",
                "-o",
            ])
            .arg(&elf)
            .arg(repo().join("tests/fixtures/firmware/blink.c")),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "avr-gcc failed: {:?}", text(&o));
    elf
}

/// Flashes `fw` with `nixflash flash --no-build --elf ... --port <pty>` run in `project` with
/// `path` as PATH, then checks the LED period and the greeting. Returns nixflash's stderr.
pub(super) fn flash_and_check(project: &Path, path: &std::ffi::OsStr, limit: Duration) -> String {
    let fw = firmware();
    let mut sim = SimUno::start();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            .args(["--port", &sim.pty])
            .current_dir(project)
            .env("PATH", path),
        limit,
    );
    let done = Instant::now();
    let (stdout, stderr) = text(&o);
    assert!(
        o.status.success(),
        "nixflash flash failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        o.status
    );
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("bytes of flash verified"),
        "avrdude did not verify the upload:\n{all}"
    );
    assert!(
        !all.contains("Console"),
        "ravedude opened its console:\n{all}"
    );
    let want = format!("-P {} {}", sim.pty, fw.elf.display());
    assert!(
        stderr.contains("Running CARGO_MANIFEST_DIR=") && stderr.contains(&want),
        "the ravedude command line is not shown:\n{stderr}"
    );
    // The firmware's hash, before it is flashed, as sha256sum prints it.
    let elf_hash = nixflash::firmware::hash::sha256_file(&fw.elf).unwrap();
    let line = format!("SHA-256 {elf_hash}  {}", fw.elf.display());
    let (hashed, flashed) = (
        stderr.find(&line),
        stderr.find("Running CARGO_MANIFEST_DIR="),
    );
    assert!(
        hashed.is_some() && hashed < flashed,
        "no `{line}` before the flasher ran:\n{stderr}"
    );
    let half = measured_half_period(&mut sim, done, &fw.what, fw.half_period);
    assert!(
        (half - fw.half_period).abs() < 0.005 * fw.half_period,
        "PB5 toggles every {half} s, but {} toggles it every {} s",
        fw.what,
        fw.half_period
    );
    // nixflash's own monitor receives the greeting the firmware printed after the upload.
    let m = run_bounded(
        nixflash()
            .args(["monitor", "--port", &sim.pty, "--duration", "3"])
            .current_dir(project)
            .stdin(std::process::Stdio::null()),
        Duration::from_secs(30),
    );
    let (mon_out, mon_err) = text(&m);
    assert!(m.status.success(), "nixflash monitor failed:\n{mon_err}");
    assert!(
        mon_out.contains(&fw.greeting),
        "nixflash monitor did not show the greeting {:?}; it showed {mon_out:?}\n{mon_err}",
        fw.greeting
    );
    stderr
}
