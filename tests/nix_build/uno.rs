//! The Arduino Uno built by real Nix: from scratch (the std lock made from the toolchain's
//! rust-src, then the dependencies and the firmware), flashed with real ravedude into a simulated
//! Uno with the same Nix arguments (nothing built again), rebuilt after an edit (one derivation,
//! one crate), and the flake's checks (firmware, rustfmt, clippy, simavr), which pass and catch
//! a formatting error and a clippy warning. `nixflash sim` and `checks.sim` are in sim.rs.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{
    built_derivations, check_passes, flake_check, from_scratch, git_add, nixflash_build, ready,
    rebuild_after_an_edit, size_line, FromScratch,
};
use crate::common::process::{collect, lossy, run_bounded, text, Spawned};
use crate::common::sim::{measured_half_period, ravedude_missing, sim_lock, sim_missing, SimUno};
use crate::common::{self, offline::NixOffline, skip};

/// The Uno project of this run, built from scratch by the first test that asks.
pub(super) fn uno(off: &NixOffline) -> FromScratch {
    from_scratch(off, "uno", "uno", &[])
}

#[test]
fn uno_builds_from_scratch_and_flashes() {
    let test = "uno_builds_from_scratch_and_flashes";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(test, &why);
    }
    let Some(off) = ready(test, &["git", "avr-size"]) else {
        return;
    };
    let built = uno(off);
    let log = &built.log;
    // From scratch: nixflash made the std lock from the (stand-in) toolchain's rust-src, then Nix
    // built the dependencies and the firmware (checked by from_scratch).
    assert!(!built.had_std_lock, "a new Uno project has a std lock");
    assert!(
        log.contains("Updated nix/std-Cargo.lock to the standard library's lock"),
        "nixflash did not create the std lock:\n{log}"
    );
    let p = built.copy();
    let std_lock = fs::read(p.dir.join("nix/std-Cargo.lock")).unwrap();
    assert_eq!(
        std_lock,
        fs::read("/usr/lib/rustlib/src/rust/library/Cargo.lock").unwrap(),
        "nix/std-Cargo.lock is not the lock of the toolchain's rust-src (nix-offline's toolchain \
         is Debian's rustc, whose rust-src this is)"
    );
    let tracked = common::git(&p.dir, &["ls-files", "nix"]);
    assert!(
        tracked.contains("nix/std-Cargo.lock") && tracked.contains("nix/std-Cargo.lock.source"),
        "the std lock is not git-added: {tracked}"
    );
    let (flash, ram) = size_line(log);
    assert_eq!(
        (flash, ram),
        avr_size(&built.elf()),
        "the size report disagrees with avr-size"
    );
    common::measured(&format!(
        "{} is {flash} B of flash and {ram} B of RAM",
        p.name
    ));

    // Built again, as JSON: nothing new to build, the std lock left alone.
    let (json, log, _) = nixflash_build(off, &p, &["--json"]);
    assert!(
        built_derivations(&log).is_empty(),
        "a second build built something:\n{log}"
    );
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(j["std_lock"]["state"], "unchanged", "{json}");
    assert_eq!(j["size"]["flash"]["used"], flash);

    // Flash the simulated Uno with the same arguments: nothing is built, real ravedude uploads,
    // nixflash's monitor shows the greeting, and the board blinks.
    let log = flash_simulated_uno(off, &p.dir, &p.name, None);
    assert!(
        built_derivations(&log).is_empty(),
        "flash built something although the build was done:\n{log}"
    );
}

/// `nixflash flash --port <a simulated Uno> --monitor -- <nix-offline's arguments>` in `dir`
/// (PATH `path`, else the test's own), for the Uno project `name`: real ravedude uploads the
/// built ELF, nixflash's monitor shows the greeting, SIGINT ends it with exit code 0, and the
/// board blinks every 500 ms. Returns what nixflash printed on stderr.
pub(super) fn flash_simulated_uno(
    off: &NixOffline,
    dir: &Path,
    name: &str,
    path: Option<&std::ffi::OsStr>,
) -> String {
    let _sim_lock = sim_lock();
    let mut sim = SimUno::start();
    let mut cmd = off.nixflash(dir);
    cmd.args(["flash", "--port", &sim.pty, "--monitor", "--"])
        .args(&off.override_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = path {
        cmd.env("PATH", path);
    }
    let mut flash = Spawned::new(&mut cmd);
    let (out, t_out) = collect(flash.child.stdout.take().unwrap());
    let (err, t_err) = collect(flash.child.stderr.take().unwrap());
    let greeting = format!("Hello from {name} on the Arduino Uno!");
    let started = Instant::now();
    while !lossy(&out).contains(&greeting) {
        if let Some(status) = flash.try_wait() {
            panic!(
                "nixflash flash ended ({status}) before the greeting\n{}\n{}",
                lossy(&out),
                lossy(&err)
            );
        }
        if started.elapsed() > Duration::from_secs(300) {
            flash.kill_group();
            panic!(
                "no greeting {greeting:?} within 300 s\n{}\n{}",
                lossy(&out),
                lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let done = Instant::now();
    flash.signal(libc::SIGINT);
    let status = flash
        .wait_for(Duration::from_secs(20))
        .expect("nixflash flash --monitor did not end after SIGINT");
    let (_, _) = (t_out.join(), t_err.join());
    let log = lossy(&err);
    assert_eq!(status.code(), Some(0), "{log}");
    let running = log
        .lines()
        .find(|l| l.trim_start().starts_with("Running "))
        .unwrap_or_else(|| panic!("flash shows no ravedude command:\n{log}"));
    assert!(
        running.contains(&format!(" -P {} /nix/store/", sim.pty))
            && running.ends_with(&format!("/bin/{name}.elf")),
        "ravedude was not given the built ELF: {running}"
    );
    assert!(log.contains("bytes of flash verified"), "{log}");
    let half = measured_half_period(&mut sim, done, name, 0.5);
    assert!(
        (half - 0.5).abs() < 0.0025,
        "PB5 toggles every {half} s, not every 500 ms"
    );
    log
}

/// An edit of src/main.rs rebuilds the firmware alone, and only its own crate in it; the flake's
/// checks pass on the generated project, and catch a formatting error and a clippy warning.
#[test]
fn uno_rebuilds_only_the_firmware_and_its_checks_pass_and_fail() {
    let test = "uno_rebuilds_only_the_firmware_and_its_checks_pass_and_fail";
    let Some(off) = ready(test, &["git"]) else {
        return;
    };
    let p = uno(off).copy();
    let main = p.dir.join("src/main.rs");
    let good = fs::read_to_string(&main).unwrap();
    rebuild_after_an_edit(off, &p, &[]);
    // Back to the greeting that checks.sim expects (tests/nix_build/sim.rs fails it).
    fs::write(&main, &good).unwrap();
    git_add(&p, "src/main.rs");

    // The flake's checks pass on the generated project...
    flake_check(off, &p, true);
    // ...and catch a formatting error...
    fs::write(&main, good.replacen("fn main() -> ! {", "fn main()->!{", 1)).unwrap();
    git_add(&p, "src/main.rs");
    let (ok, log) = check_passes(off, &p, "fmt");
    assert!(
        !ok,
        "checks.fmt passed a badly formatted src/main.rs:\n{log}"
    );
    assert!(log.contains("Diff in"), "{log}");
    // ...and a clippy warning (an unused variable).
    let unused = good.replacen(
        "let dp = arduino_hal::Peripherals::take().unwrap();",
        "let dp = arduino_hal::Peripherals::take().unwrap();\n    let unused = 1;",
        1,
    );
    assert_ne!(unused, good);
    fs::write(&main, unused).unwrap();
    git_add(&p, "src/main.rs");
    let (ok, log) = check_passes(off, &p, "clippy");
    assert!(!ok, "checks.clippy passed an unused variable:\n{log}");
    assert!(log.contains("unused variable"), "{log}");
}

/// `.text + .data` and `.data + .bss + .noinit` of an AVR ELF, by `avr-size -A`.
fn avr_size(elf: &Path) -> (u64, u64) {
    let o = run_bounded(
        Command::new("avr-size").arg("-A").arg(elf),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "avr-size: {:?}", text(&o));
    let mut s = std::collections::HashMap::new();
    for l in text(&o).0.lines() {
        let mut f = l.split_whitespace();
        if let (Some(name), Some(Ok(size))) = (f.next(), f.next().map(str::parse::<u64>)) {
            s.insert(name.to_string(), size);
        }
    }
    let get = |n: &str| s.get(n).copied().unwrap_or(0);
    (
        get(".text") + get(".data"),
        get(".data") + get(".bss") + get(".noinit"),
    )
}

/// A compile error in src/main.rs: rustc's own diagnostic (the error with its code, the
/// `--> file:line:col` line, the caret lines) is in what `nixflash build` prints, on a terminal
/// (where the builder's lines are not shown as they come) and in a pipe; and the command the hint
/// gives to see the whole log works on a Nix without flakes enabled.
#[test]
fn uno_compile_error_is_shown_on_a_terminal_and_in_a_pipe() {
    let test = "uno_compile_error_is_shown_on_a_terminal_and_in_a_pipe";
    let Some(off) = ready(test, &["git"]) else {
        return;
    };
    let p = uno(off).copy();
    let main = p.dir.join("src/main.rs");
    let good = fs::read_to_string(&main).unwrap();
    let bad = good.replacen(
        "let dp = arduino_hal::Peripherals::take().unwrap();",
        "let dp = arduino_hal::Peripherals::take().unwrap();\n    let wrong: u8 = \"not a number\";",
        1,
    );
    assert_ne!(bad, good, "src/main.rs has no Peripherals::take line");
    let line = bad
        .lines()
        .position(|l| l.contains("let wrong: u8"))
        .unwrap()
        + 1;
    fs::write(&main, bad).unwrap();
    git_add(&p, "src/main.rs");
    let rustc_lines = |shown: &str, how: &str| {
        assert!(
            shown.contains("error[E0308]: mismatched types"),
            "{how}: no rustc error:\n{shown}"
        );
        assert!(
            shown.contains(&format!("--> src/main.rs:{line}:")),
            "{how}: no `--> src/main.rs:{line}:` line:\n{shown}"
        );
        assert!(
            shown.contains("expected `u8`, found `&str`"),
            "{how}: no caret line:\n{shown}"
        );
    };

    let started = Instant::now();
    let cpu = common::process::children_cpu();
    // On a terminal.
    let mut pty = crate::common::pty::Pty::new();
    let mut cmd = off.nixflash(&p.dir);
    cmd.arg("build")
        .arg("--")
        .args(&off.override_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(pty.slave());
    let mut child = Spawned::new(&mut cmd);
    drop(cmd);
    let shown = strip_ansi(&lossy_bytes(&pty.read_all(Duration::from_secs(900))));
    let status = child
        .wait_for(Duration::from_secs(60))
        .expect("nixflash build did not end");
    assert_eq!(status.code(), Some(1), "{shown}");
    rustc_lines(&shown, "on a terminal");

    // In a pipe.
    let o = run_bounded(
        off.nixflash(&p.dir)
            .arg("build")
            .arg("--")
            .args(&off.override_args),
        Duration::from_secs(900),
    );
    let (_, piped) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{piped}");
    rustc_lines(&piped, "in a pipe");
    // The failure's own report (after the live log) has the rustc error too.
    let report = &piped[piped.rfind("error: `nix build").expect("no failure report")..];
    rustc_lines(report, "the failure report");

    common::measured(&format!(
        "{} failed to compile twice (a terminal, a pipe) in {:.1} s ({:.1} s of CPU)",
        p.name,
        started.elapsed().as_secs_f64(),
        (common::process::children_cpu() - cpu).as_secs_f64()
    ));

    // The hint's command shows the whole log, flakes enabled or not.
    for shown in [&shown, &piped] {
        assert!(
            !shown.contains("run `nix build .#default`"),
            "a hint needs flakes enabled:\n{shown}"
        );
        let hint = shown
            .lines()
            .find_map(|l| {
                l.split_once("`nix --extra-experimental-features 'nix-command flakes' log ")
            })
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(drv, _)| drv.to_string())
            .unwrap_or_else(|| panic!("no `nix ... log <drv>` hint:\n{shown}"));
        let o = run_bounded(
            off.nix(&p.dir)
                .env("NIX_CONFIG", "experimental-features =")
                .args(["log", &hint]),
            Duration::from_secs(60),
        );
        rustc_lines(&strip_ansi(&text(&o).0), "nix log");
    }
}

fn lossy_bytes(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `text` without ANSI escape sequences (nixflash's own stripping) and carriage returns (a
/// terminal's progress line).
fn strip_ansi(text: &str) -> String {
    nixflash::nix::log::strip_ansi(text).replace('\r', "")
}
