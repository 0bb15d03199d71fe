//! `nixflash sim` building a generated Uno project with real Nix, and the generated flake's
//! `checks.<system>.sim` BUILT by real Nix: the Uno firmware runs in simavr (the test overlay's
//! link to the host's simavr, as nixpkgs' cannot be built here) for the simulated time of
//! Cargo.toml's `[package.metadata.nixflash.sim]`, and the check fails when the firmware does not
//! send a text it expects.

use std::fs;
use std::time::Duration;

use super::uno::uno;
use super::{check_passes, git_add, ready, NixOffline, Project};
use crate::common::process::{run_bounded, text};
use crate::common::skip;

#[test]
fn uno_sim_builds_and_runs_and_checks_sim_fails_when_an_expected_text_never_comes() {
    let test = "uno_sim_builds_and_runs_and_checks_sim_fails_when_an_expected_text_never_comes";
    if !crate::common::on_path("simavr") {
        return skip(test, "simavr is not on PATH (apt install simavr)");
    }
    let Some(off) = ready(test, &["git"]) else {
        return;
    };

    // The Uno project of this run (built from scratch once), its std lock taken away: `sim`
    // makes it again as `build` does, and finds the firmware already built.
    let p = uno(off).copy();
    for lock in ["nix/std-Cargo.lock", "nix/std-Cargo.lock.source"] {
        fs::remove_file(p.dir.join(lock)).unwrap();
    }
    let greeting = format!("Hello from {} on the Arduino Uno!", p.name);

    // `nixflash sim` builds as `nixflash build` does (the std lock, then the flake's firmware,
    // with the nix arguments after --), then runs what it built.
    let sim = |args: &[&str]| {
        let o = run_bounded(
            off.nixflash(&p.dir)
                .arg("sim")
                .args(args)
                .args(["--duration", "2", "--expect", &greeting, "--"])
                .args(&off.override_args),
            Duration::from_secs(1200),
        );
        let (out, err) = text(&o);
        assert_eq!(
            o.status.code(),
            Some(0),
            "nixflash sim {args:?}:\n{out}\n{err}"
        );
        assert!(out.contains(&greeting), "{out}");
        err
    };
    let err = sim(&[]);
    assert!(
        err.contains("Updated nix/std-Cargo.lock") && err.contains("Simulating /nix/store/"),
        "{err}"
    );
    // --no-build: the firmware of that build, ./result.
    let err = sim(&["--no-build"]);
    let result = format!("Simulating {}/result/bin/{}.elf", p.dir.display(), p.name);
    assert!(err.contains(&result), "{err}");
    let manifest = p.dir.join("Cargo.toml");
    let cargo_toml = fs::read_to_string(&manifest).unwrap();
    // What `nixflash new` wrote: the blinky's greeting, 2 s.
    let metadata =
        format!("[package.metadata.nixflash.sim]\nexpect = [\"{greeting}\"]\nduration = 2\n");
    assert!(cargo_toml.contains(&metadata), "{cargo_toml}");

    // It passes, and the log shows what the firmware sent.
    sim_check_shows(off, &p, &greeting);

    // A text the firmware never sends: the check fails and names it.
    let edit = |metadata_now: &str| {
        fs::write(&manifest, cargo_toml.replace(&metadata, metadata_now)).unwrap();
        git_add(&p, "Cargo.toml");
    };
    edit(&format!(
        "[package.metadata.nixflash.sim]\nexpect = [\"{greeting}\", \"Goodbye\"]\nduration = 2\n"
    ));
    let (ok, log) = check_passes(off, &p, "sim");
    assert!(!ok, "checks.sim passed without \"Goodbye\":\n{log}");
    assert!(
        log.contains("the firmware never sent \"Goodbye\" in 2 s of simulated time"),
        "{log}"
    );

    // Too short a time: the greeting takes some 6 ms at 57600 baud, so 2 ms do not see it.
    edit(&format!(
        "[package.metadata.nixflash.sim]\nexpect = [\"{greeting}\"]\nduration = 0.002\n"
    ));
    let (ok, log) = check_passes(off, &p, "sim");
    assert!(!ok, "checks.sim saw the greeting within 2 ms:\n{log}");
    assert!(
        log.contains(&format!("the firmware never sent \"{greeting}\" in 0.002")),
        "{log}"
    );

    // A firmware that greets differently fails the check as it was generated.
    edit(&metadata);
    let main = p.dir.join("src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    fs::write(&main, source.replacen("Hello from ", "Hi from ", 1)).unwrap();
    git_add(&p, "src/main.rs");
    let (ok, log) = check_passes(off, &p, "sim");
    assert!(
        !ok,
        "checks.sim passed a firmware without its greeting:\n{log}"
    );
    assert!(
        log.contains(&format!("the firmware never sent \"{greeting}\" in 2 s")),
        "{log}"
    );
    assert!(
        log.contains(&format!("Hi from {} on the Arduino Uno!", p.name)),
        "{log}"
    );
}

/// The micro:bit v1's `checks.sim` BUILT by real Nix: the firmware compiled by the flake (thumbv6m,
/// nix-offline's stand-in toolchain), run in QEMU (the test overlay's link to the host's
/// qemu-system-arm) for Cargo.toml's 2 s, the greeting seen on the UART; a text the firmware never
/// sends fails it, naming the text.
#[test]
fn microbit_v1_checks_sim_runs_the_firmware_in_qemu() {
    let test = "microbit_v1_checks_sim_runs_the_firmware_in_qemu";
    if !crate::common::on_path("qemu-system-arm") {
        return skip(
            test,
            "qemu-system-arm is not on PATH (apt install qemu-system-arm)",
        );
    }
    let Some(off) = ready(test, &["git", "flip-link"]) else {
        return;
    };
    let p = super::new_project(off, "mb", "microbit-v1");
    let greeting = format!("Hello from {} on the BBC micro:bit v1!", p.name);
    sim_check_shows(off, &p, &greeting);

    let manifest = p.dir.join("Cargo.toml");
    let cargo_toml = fs::read_to_string(&manifest).unwrap();
    let metadata =
        format!("[package.metadata.nixflash.sim]\nexpect = [\"{greeting}\"]\nduration = 2\n");
    assert!(cargo_toml.contains(&metadata), "{cargo_toml}");
    fs::write(
        &manifest,
        cargo_toml.replace(
            &metadata,
            &format!(
                "[package.metadata.nixflash.sim]\nexpect = [\"{greeting}\", \"Goodbye\"]\n\
                 duration = 1\n"
            ),
        ),
    )
    .unwrap();
    git_add(&p, "Cargo.toml");
    let (ok, log) = check_passes(off, &p, "sim");
    assert!(!ok, "checks.sim passed without \"Goodbye\":\n{log}");
    assert!(
        log.contains("the firmware never sent \"Goodbye\" in 1 s"),
        "{log}"
    );
}

/// The project's checks.sim passes, and its log shows what the firmware sent: `greeting`.
fn sim_check_shows(off: &NixOffline, p: &Project, greeting: &str) {
    let (ok, log) = check_passes(off, p, "sim");
    assert!(ok, "checks.sim failed on the generated project:\n{log}");
    let prefix = format!("{}-sim> ", p.name);
    assert!(
        log.lines()
            .any(|l| l.starts_with(&prefix) && l.contains(greeting)),
        "checks.sim did not show the greeting:\n{log}"
    );
}
