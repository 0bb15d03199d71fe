//! What `build`, `update` and `doctor` check before Nix runs, against real Nix: the Nix version,
//! the files a build reads (flake.lock corrupted or deleted, Cargo.lock, Cargo.toml), the inputs
//! `update` is given; and how a build that cannot download says so (once, and what to do when the
//! user asked for --offline).
//!
//! Tests that need `nix` print `SKIPPED: ...` when it is missing, and fail in CI.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

use crate::common::fixture::{nix_calls, require, run, Fixture};

/// `nixflash new <name> --board uno` in `dir`: a project with nixflash's pinned flake.lock.
fn new_uno(dir: &Path, name: &str) -> PathBuf {
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(dir).args(["new", name, "--board", "uno"]);
    assert_eq!(run(c).code, 0);
    dir.join(name)
}

fn nixflash(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(dir);
    c
}

/// A Nix older than the pinned nixpkgs needs, first on PATH: `build` and `update` say so (and what
/// to do) before running any nix command, instead of failing later in ways that look like
/// something else.
#[test]
fn an_old_nix_first_on_path_is_named_before_anything_runs() {
    require!(
        "nix",
        "an_old_nix_first_on_path_is_named_before_anything_runs"
    );
    let f = Fixture::new(true);
    // The real nix behind a `--version` that says 2.8.0, as Debian 12's does.
    let real = which::which("nix").unwrap();
    let bin = f.dir.parent().unwrap().join("old-nix");
    fs::create_dir_all(&bin).unwrap();
    let script = bin.join("nix");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'nix (Nix) 2.8.0'; exit 0; fi\nexec {} \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    for args in [&["build", "--verbose"][..], &["update", "--verbose"]] {
        let mut c = f.nixflash("");
        c.args(args).env("PATH", &path);
        let o = run(c);
        assert_eq!(o.code, 1, "{args:?}");
        assert!(
            o.stderr.contains(&format!(
                "error: nix 2.8.0 ({}) is older than 2.18.0, which the nixpkgs that projects pin needs",
                script.display()
            )),
            "{args:?}: {}",
            o.stderr
        );
        assert!(
            o.stderr.contains("hint: install a current Nix"),
            "{}",
            o.stderr
        );
        assert!(nix_calls(&o.stderr).is_empty(), "{}", o.stderr);
        assert!(!o.stderr.contains("seems to be offline"), "{}", o.stderr);
    }
    let mut c = f.nixflash("");
    c.args(["build", "--json"]).env("PATH", &path);
    let o = run(c);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!((o.code, &j["kind"]), (1, &"nix-too-old".into()), "{j}");
}

/// A first build on a machine without the network: the download error once (not each of Nix's
/// retries, not twice), with the diagnosis; with `-- --offline`, the hint says to drop it rather
/// than to connect.
#[test]
fn an_offline_build_says_so_once_and_minds_offline() {
    require!("nix", "an_offline_build_says_so_once_and_minds_offline");
    let tmp = tempfile::tempdir().unwrap();
    let p = new_uno(tmp.path(), "fw");
    let mut c = nixflash(&p);
    c.arg("build");
    let o = run(c);
    assert_eq!(o.code, 1);
    let e = &o.stderr;
    assert_eq!(e.matches("unable to download").count(), 1, "{e}");
    assert!(!e.contains("retrying in"), "{e}");
    assert!(
        e.contains("diagnosis: Nix could not download https://"),
        "{e}"
    );
    assert!(e.contains("hint: connect to the network"), "{e}");
    let lines = e.lines().count();
    assert!(lines <= 12, "{lines} lines:\n{e}");
    crate::common::measured(&format!("an offline first build says so in {lines} lines"));

    let mut c = nixflash(&p);
    c.args(["build", "--", "--offline"]);
    let o = run(c);
    assert_eq!(o.code, 1);
    let e = &o.stderr;
    assert!(
        e.contains("diagnosis: Nix could not download https://")
            && e.contains("you passed --offline"),
        "{e}"
    );
    assert!(e.contains("hint: drop --offline for this build"), "{e}");
    assert!(!e.contains("connect to the network"), "{e}");
}

/// `update` with a name that is not one of the flake's inputs fails, naming the flake's inputs
/// and the closest, before any nix command (which would report every input "Unchanged").
#[test]
fn update_of_an_unknown_input_names_the_flake_s_inputs() {
    require!("nix", "update_of_an_unknown_input_names_the_flake_s_inputs");
    let tmp = tempfile::tempdir().unwrap();
    let p = new_uno(tmp.path(), "fw");
    let lock = fs::read_to_string(p.join("flake.lock")).unwrap();
    let mut c = nixflash(&p);
    c.args(["update", "nixpkgz", "--verbose"]);
    let o = run(c);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains(
            "error: the flake has no input `nixpkgz` (its inputs: crane, nixpkgs, rust-overlay)"
        ),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("hint: did you mean `nixpkgs`? nixflash update nixpkgs"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("Unchanged"), "{}", o.stderr);
    assert!(nix_calls(&o.stderr).is_empty(), "{}", o.stderr);
    assert_eq!(fs::read_to_string(p.join("flake.lock")).unwrap(), lock);

    // Without a flake.lock, the inputs are those of nixflash's pins; the update fails all or
    // nothing, so no flake.lock is left behind either.
    fs::remove_file(p.join("flake.lock")).unwrap();
    let mut c = nixflash(&p);
    c.args(["update", "nixpkgz"]);
    let o = run(c);
    assert_eq!(o.code, 1);
    assert!(
        !o.stderr.contains("Wrote flake.lock")
            && o.stderr.contains("the flake has no input `nixpkgz`")
            && o.stderr.contains("crane, nixpkgs, rust-overlay"),
        "{}",
        o.stderr
    );
    assert!(!p.join("flake.lock").exists());
}

/// A corrupted flake.lock: `build` fails with what is wrong and what to do (not Nix's raw JSON
/// exception), and `doctor` fails on it, naming the file.
#[test]
fn a_corrupted_flake_lock_is_named_by_build_and_doctor() {
    require!("nix", "a_corrupted_flake_lock_is_named_by_build_and_doctor");
    let f = Fixture::new(true);
    let mut c = f.nixflash("");
    c.arg("build");
    assert_eq!(run(c).code, 0);
    let lock = f.dir.canonicalize().unwrap().join("flake.lock");
    fs::write(&lock, "{\n  \"nodes\": {\n    \"root\": \n").unwrap();
    let mut c = f.nixflash("src");
    c.arg("build");
    let o = run(c);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains(&format!(
            "error: {} is not a lock file Nix can read: flake.lock is not valid JSON",
            lock.display()
        )),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("json.exception"), "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!(
            "hint: if git has a good copy: git -C {} checkout -- flake.lock",
            lock.parent().unwrap().display()
        )),
        "{}",
        o.stderr
    );
    let mut c = f.nixflash("");
    c.arg("doctor");
    let o = run(c);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stdout.contains(&format!(
            "✗ {} is not a lock file Nix can read",
            lock.display()
        )),
        "{}",
        o.stdout
    );
}

/// A deleted flake.lock of a generated project: `doctor` says so, and `build` writes it again
/// from nixflash's tested pins (the one `new` wrote), so that Nix fetches the pinned revisions
/// rather than locking the inputs to whatever is newest (here, offline, the download of the
/// pinned nixpkgs is what fails).
#[test]
fn a_deleted_flake_lock_is_written_again_from_the_pins() {
    require!("nix", "a_deleted_flake_lock_is_written_again_from_the_pins");
    let tmp = tempfile::tempdir().unwrap();
    let p = new_uno(tmp.path(), "fw");
    let pinned = fs::read_to_string(p.join("flake.lock")).unwrap();
    fs::remove_file(p.join("flake.lock")).unwrap();

    let mut c = nixflash(&p);
    c.arg("doctor");
    let o = run(c);
    let line = o
        .stdout
        .lines()
        .find(|l| l.contains("flake.lock is missing"))
        .unwrap_or_else(|| panic!("{}", o.stdout));
    assert!(
        line.starts_with("! ")
            && line.contains("nixflash build writes it again from nixflash's tested pins"),
        "{line}"
    );
    assert!(!p.join("flake.lock").exists(), "doctor wrote a flake.lock");

    let mut c = nixflash(&p);
    c.arg("build");
    let o = run(c);
    assert!(
        o.stderr
            .contains("Wrote flake.lock from nixflash's tested pins"),
        "{}",
        o.stderr
    );
    assert_eq!(fs::read_to_string(p.join("flake.lock")).unwrap(), pinned);
    // Nix used it: it fetched the pinned nixpkgs, it did not ask GitHub for the newest commits.
    let rev = nixflash::pins::pins().unwrap()["nixpkgs"].rev.clone();
    assert!(
        o.stderr
            .contains(&format!("github.com/NixOS/nixpkgs/archive/{rev}.tar.gz")),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("commits/HEAD"), "{}", o.stderr);
}

/// doctor fails on a Cargo.lock, a rust-toolchain.toml and a Cargo.toml that cannot be read,
/// naming the file (a broken Cargo.toml is not "outside a project").
#[test]
fn doctor_fails_on_a_broken_cargo_lock_or_cargo_toml() {
    require!("nix", "doctor_fails_on_a_broken_cargo_lock_or_cargo_toml");
    let f = Fixture::new(true);
    let dir = f.dir.canonicalize().unwrap();
    let good = f.read("Cargo.lock");
    fs::write(
        dir.join("Cargo.lock"),
        "[[package]]\nname = \"fixture\nversion = 1\n",
    )
    .unwrap();
    let mut c = f.nixflash("");
    c.arg("doctor");
    let o = run(c);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stdout.contains(&format!(
            "✗ {}:2:16 is not valid TOML",
            dir.join("Cargo.lock").display()
        )),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("checkout -- Cargo.lock"), "{}", o.stdout);
    fs::write(dir.join("Cargo.lock"), good).unwrap();

    // rust-toolchain.toml too, which the flake reads the channel from.
    let good = f.read("rust-toolchain.toml");
    fs::write(
        dir.join("rust-toolchain.toml"),
        "[toolchain
",
    )
    .unwrap();
    let mut c = f.nixflash("");
    c.arg("doctor");
    let o = run(c);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stdout.contains(&format!(
            "✗ {}:1:",
            dir.join("rust-toolchain.toml").display()
        )) && o.stdout.contains("checkout -- rust-toolchain.toml"),
        "{}",
        o.stdout
    );
    fs::write(dir.join("rust-toolchain.toml"), good).unwrap();

    let toml = f.read("Cargo.toml");
    fs::write(dir.join("Cargo.toml"), toml.replacen("]", "", 1)).unwrap();
    let mut c = f.nixflash("src");
    c.arg("doctor");
    let o = run(c);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let line = o
        .stdout
        .lines()
        .find(|l| l.starts_with("✗ "))
        .unwrap_or_else(|| panic!("{}", o.stdout));
    assert!(
        line.contains(&format!("{}:1:", dir.join("Cargo.toml").display()))
            && line.contains("invalid TOML"),
        "{line}"
    );
}
