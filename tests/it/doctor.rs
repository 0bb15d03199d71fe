//! `nixflash doctor`, and what every command needs of the machine (nix on PATH, flakes, no cargo
//! needed) and of the project (read by cargo metadata or from Cargo.toml, a workspace, a board
//! edited by hand), against real Nix and the fixture flake.
//!
//! Tests that need `nix` print `SKIPPED: ...` when it is missing, and fail in CI.

use std::fs;
use std::process::Command as StdCommand;

use assert_cmd::Command;
use nixflash::manifest::{self, ReadBy};

use crate::common;
use crate::common::fixture::{have, require, run, Fixture};
use crate::common::git;

#[test]
fn doctor_checks_each_thing_on_one_line() {
    require!("nix", "doctor_checks_each_thing_on_one_line");
    let f = Fixture::new(true);
    let mut c = f.nixflash("src");
    c.arg("doctor").env_remove("NIX_CONFIG");
    let o = run(c);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("✓ ") || l.starts_with("! ") || l.starts_with("✗ ")),
        "{lines:?}"
    );
    assert!(lines[0].starts_with("✓ nix 2."), "{}", lines[0]);
    assert!(lines.iter().any(|l| l.starts_with("✓ git repository")));
    assert!(lines.contains(&"✓ board uno (Arduino Uno)"));
    assert!(lines.iter().any(|l| l.contains("ravedude")));
    // No std lock yet: worth knowing (the build makes it), and the flake is not evaluated.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("! nix/std-Cargo.lock is missing")),
        "{lines:?}"
    );
    assert!(
        !o.stdout.contains("✗ the flake does not evaluate"),
        "{lines:?}"
    );
    assert_eq!(o.code, 0, "only ! lines, so doctor succeeds");

    // After a build: every line ✓, the flake evaluated.
    let mut c = f.nixflash("");
    c.arg("build");
    assert_eq!(run(c).code, 0);
    let mut c = f.nixflash("");
    c.arg("doctor");
    let o = run(c);
    assert!(
        o.stdout.lines().all(|l| l.starts_with("✓ ")),
        "{}",
        o.stdout
    );
    assert!(o
        .stdout
        .contains("✓ the flake evaluates: the firmware is /nix/store/"));
    assert_eq!(o.code, 0);

    // Flakes off in nix.conf and a file untracked: both !, with their fixes; still exit 0,
    // since nixflash copes with both.
    git(&f.dir, &["rm", "-q", "--cached", "firmware.elf"]);
    let mut c = f.nixflash("");
    c.arg("doctor").env("NIX_CONFIG", "experimental-features =");
    let o = run(c);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.contains(
        "! flakes are not enabled in nix.conf: nixflash enables them for its own calls, but plain `nix build`, `nix develop` and direnv need them — fix: add `experimental-features = nix-command flakes` to ~/.config/nix/nix.conf"
    ), "{}", o.stdout);
    assert!(o.stdout.contains(
        "! git does not track firmware.elf (the flake cannot see it; `nixflash build` adds it, plain `nix build` fails) — fix: git add --intent-to-add -- firmware.elf"
    ), "{}", o.stdout);

    // A file the flake needs that .gitignore hides will fail: ✗ and exit 1; --json says the same.
    fs::write(f.dir.join(".gitignore"), "firmware.elf\n").unwrap();
    let mut c = f.nixflash("");
    c.args(["doctor", "--json"]);
    let o = run(c);
    assert_eq!(o.code, 1);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(j["ok"], false);
    let failed: Vec<&serde_json::Value> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    // The ignored file, and the evaluation that fails for it.
    assert_eq!(failed.len(), 2, "{j}");
    assert!(failed[0]["what"]
        .as_str()
        .unwrap()
        .starts_with("firmware.elf is ignored by .gitignore"));
    assert!(failed[0]["fix"]
        .as_str()
        .unwrap()
        .contains("git add --force"));
    assert!(failed[1]["what"]
        .as_str()
        .unwrap()
        .starts_with("the flake does not evaluate: path '/nix/store/"));
}

/// Outside a project, doctor checks the system only, and succeeds when it is fine.
#[test]
fn doctor_outside_a_project_checks_the_system() {
    require!("nix", "doctor_outside_a_project_checks_the_system");
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(tmp.path())
        .arg("doctor")
        .env_remove("NIX_CONFIG");
    let o = run(c);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.starts_with("✓ nix 2."), "{}", o.stdout);
    for project_check in ["project", "board", "git", "flake", "Cargo.lock"] {
        assert!(
            !o.stdout.contains(project_check) || o.stdout.contains("flakes are enabled"),
            "{project_check}: {}",
            o.stdout
        );
    }
    assert!(!o.stdout.contains("✗"), "{}", o.stdout);
}

/// A board edited by hand in Cargo.toml: build refuses and doctor fails, both saying to run
/// `nixflash init --board <id>`.
#[test]
fn a_board_edited_by_hand_is_caught_before_building() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(tmp.path())
        .args(["new", "fw", "--board", "uno", "--no-git"]);
    assert_eq!(run(c).code, 0);
    let dir = tmp.path().join("fw");
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        manifest.replace("board = \"uno\"", "board = \"mega\""),
    )
    .unwrap();
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(&dir).arg("build");
    let o = run(c);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("says board `mega2560`, but .cargo/config.toml builds for the CPU `atmega328p`, and the Arduino Mega 2560 has `atmega2560`"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("hint: to switch the project to the Arduino Mega 2560, run `nixflash init --board mega2560`"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("Building"), "{}", o.stderr);
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(&dir).args(["doctor", "--json"]);
    let o = run(c);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert!(
        j["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "fail"
                && c["what"]
                    .as_str()
                    .unwrap()
                    .starts_with("Cargo.toml says board `mega2560`")
                && c["fix"]
                    .as_str()
                    .unwrap()
                    .starts_with("nixflash init --board mega2560")),
        "{j}"
    );
}

/// A package that names no board, and a Cargo.toml that is not TOML: each says what to do, before
/// anything runs.
#[test]
fn a_project_without_a_board_or_with_a_broken_cargo_toml_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"fw\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    for cmd in ["build", "flash"] {
        let mut c = Command::cargo_bin("nixflash").unwrap();
        c.current_dir(dir).arg(cmd);
        let o = run(c);
        assert_eq!(o.code, 1, "{cmd}");
        assert!(
            o.stderr
                .contains("Cargo.toml does not say which board it is for"),
            "{cmd}: {}",
            o.stderr
        );
        assert!(
            o.stderr.contains(
                "hint: add\n\n          [package.metadata.nixflash]\n          board = \"uno\""
            ),
            "{cmd}: {}",
            o.stderr
        );
    }
    fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"fw\"\nversion = \"0.1.0\n",
    )
    .unwrap();
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(dir.join("src")).arg("build");
    let o = run(c);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains(&format!(
            "{}:3:17: invalid TOML",
            dir.canonicalize().unwrap().join("Cargo.toml").display()
        )),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("hint: fix it: cargo cannot read it either"),
        "{}",
        o.stderr
    );
}

#[test]
fn doctor_without_nix_fails() {
    let f = Fixture::new(false);
    let empty = tempfile::tempdir().unwrap();
    let mut c = f.nixflash("");
    c.arg("doctor").env("PATH", empty.path());
    let o = run(c);
    assert_eq!(o.code, 1);
    assert!(o
        .stdout
        .starts_with("✗ nix is not installed (no `nix` on PATH) — fix: install Nix"));
}

#[test]
fn the_project_is_read_by_cargo_metadata_or_from_cargo_toml_alike() {
    let f = Fixture::new(false);
    let by_toml = manifest::read_toml(&f.dir).unwrap();
    assert_eq!(by_toml.read_by, ReadBy::Toml);
    assert_eq!(by_toml.name, "fixture");
    assert_eq!(by_toml.bins, vec!["fixture".to_string()]);
    assert_eq!(by_toml.board.as_deref(), Some("uno"));
    let found = manifest::discover(&f.dir.join("src")).unwrap();
    assert_eq!(found.root, f.dir.canonicalize().unwrap());
    if !have("cargo") {
        common::skip("the cargo metadata half", "`cargo` is not on PATH");
        return;
    }
    // rust-toolchain.toml pins a nightly that is not installed; cargo must answer anyway, and
    // rustup must not install it.
    let toolchains = || {
        StdCommand::new("rustup")
            .args(["toolchain", "list"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .ok()
    };
    let before = toolchains();
    let by_cargo = manifest::read_with_cargo(&f.dir.canonicalize().unwrap())
        .expect("cargo metadata --no-deps --offline answers");
    if let Some(before) = before {
        let after = toolchains().unwrap();
        assert_eq!(before, after);
    }
    assert_eq!(by_cargo.read_by, ReadBy::CargoMetadata);
    assert_eq!(by_cargo.name, by_toml.name);
    assert_eq!(by_cargo.bins, by_toml.bins);
    assert_eq!(by_cargo.board, by_toml.board);
    // Its Cargo.toml settles everything: cargo is not asked.
    assert_eq!(found.read_by, ReadBy::Toml);
}

#[test]
fn a_workspace_member_takes_the_board_from_the_workspace_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"fw\"]\nresolver = \"2\"\n\n[workspace.package]\nversion = \"0.2.0\"\n\n\
         [workspace.metadata.nixflash]\nboard = \"nano\"\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("fw/src/bin")).unwrap();
    fs::write(
        root.join("fw/Cargo.toml"),
        "[package]\nname = \"fw\"\nversion.workspace = true\nedition = \"2021\"\n\n\
         [[bin]]\nname = \"blink\"\npath = \"src/main.rs\"\n",
    )
    .unwrap();
    fs::write(root.join("fw/src/main.rs"), "fn main() {}\n").unwrap();
    fs::write(root.join("fw/src/bin/probe.rs"), "fn main() {}\n").unwrap();

    let by_toml = manifest::read_toml(&root.join("fw")).unwrap();
    assert_eq!(by_toml.name, "fw");
    assert_eq!(by_toml.bins, vec!["blink".to_string(), "probe".to_string()]);
    assert_eq!(by_toml.board.as_deref(), Some("nano"));
    assert_eq!(by_toml.firmware_bin(), "blink");
    if !have("cargo") {
        common::skip("the cargo metadata half", "`cargo` is not on PATH");
        return;
    }
    let by_cargo = manifest::read_with_cargo(&root.join("fw")).expect("cargo answers");
    let mut cargo_bins = by_cargo.bins.clone();
    cargo_bins.sort();
    assert_eq!(cargo_bins, by_toml.bins);
    assert_eq!(by_cargo.board, by_toml.board);
}

#[test]
fn nix_missing_from_path_says_how_to_install_it() {
    let f = Fixture::new(false);
    let empty = tempfile::tempdir().unwrap();
    let mut c = f.nixflash("");
    c.arg("build").env("PATH", empty.path());
    let o = run(c);
    assert_eq!(o.code, 1);
    assert!(o
        .stderr
        .contains("error: nix is not installed (no `nix` on PATH)"));
    assert!(o.stderr.contains("hint: nixflash builds firmware with Nix"));
    assert!(o.stderr.contains("https://nixos.org/download"));
}

#[test]
fn flakes_disabled_in_the_user_config_still_build() {
    require!("nix", "flakes_disabled_in_the_user_config_still_build");
    let f = Fixture::new(true);
    // The setting really disables flakes for a plain nix call.
    let plain = StdCommand::new("nix")
        .args(["build", ".#default", "--no-link"])
        .current_dir(&f.dir)
        .env("NIX_CONFIG", "experimental-features =")
        .output()
        .unwrap();
    assert!(!plain.status.success());
    assert!(String::from_utf8_lossy(&plain.stderr).contains("experimental Nix feature"));

    let mut c = f.nixflash("");
    c.arg("build").env("NIX_CONFIG", "experimental-features =");
    let o = run(c);
    assert_eq!(o.code, 0);
    assert!(o.stderr.contains("Size flash"));
}

#[test]
fn builds_with_no_cargo_on_path() {
    require!("nix", "builds_with_no_cargo_on_path");
    require!("git", "builds_with_no_cargo_on_path");
    let f = Fixture::new(true);
    // PATH with nix and git only.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["nix", "git"] {
        std::os::unix::fs::symlink(which::which(tool).unwrap(), bin.path().join(tool)).unwrap();
    }
    assert!(which::which_in("cargo", Some(bin.path()), &f.dir).is_err());
    let mut c = f.nixflash("src");
    c.args(["build", "--verbose"]).env("PATH", bin.path());
    let o = run(c);
    assert_eq!(o.code, 0);
    assert!(o.stderr.contains("read from Cargo.toml directly"));
    assert!(o.stderr.contains("Size flash"));
}

/// Debug-probe access is checked in a Cortex-M project or with `--probes`, not in an AVR project
/// or outside a project; as root it says so, as another user (`setpriv` to nobody, when this runs
/// as root) it checks this machine's udev rules and the plugdev group. `--udev-rules` prints one
/// rule per probe of the table.
#[test]
fn doctor_checks_probe_access_in_a_cortex_m_project_or_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let nixflash = |dir: &std::path::Path, args: &[&str]| {
        let mut c = Command::cargo_bin("nixflash").unwrap();
        c.current_dir(dir)
            .args(args)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"));
        run(c)
    };
    let probe_lines = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.contains(" debug probes: "))
            .map(str::to_string)
            .collect()
    };
    for (board, dir) in [("nucleo-f446re", "cm"), ("uno", "avr")] {
        let o = nixflash(home, &["new", dir, "--board", board, "--no-git"]);
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    let offline = ["doctor", "--", "--offline"];
    let in_cm = probe_lines(&nixflash(&home.join("cm"), &offline).stdout);
    assert!(probe_lines(&nixflash(&home.join("avr"), &offline).stdout).is_empty());
    assert!(probe_lines(&nixflash(home, &["doctor"]).stdout).is_empty());
    let asked = probe_lines(&nixflash(home, &["doctor", "--probes"]).stdout);
    assert_eq!(asked, in_cm);
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if root {
        assert_eq!(
            asked,
            [
                "✓ debug probes: running as root (other users need udev rules: `nixflash doctor \
              --udev-rules` prints them)"
            ]
        );
    } else {
        assert_eq!(asked.len(), 2, "{asked:?}");
    }
    // As nobody: the rules line (✓ with the files, or ✗/! with the rules to write) and the
    // plugdev line.
    if root && have("setpriv") {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = assert_cmd::cargo::cargo_bin("nixflash");
        let out = StdCommand::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(["doctor", "--probes"])
            .current_dir(home)
            .env("HOME", home)
            .output()
            .unwrap();
        let lines = probe_lines(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(lines.len(), 2, "{lines:?}");
        let rules = &lines[0];
        assert!(
            rules.starts_with("✓ debug probes: udev rules let you open them (/")
                || rules.contains(
                    "fix: `nixflash doctor --udev-rules | sudo tee \
                     /etc/udev/rules.d/69-nixflash-probes.rules`"
                )
                || rules.contains("services.udev.packages = [ pkgs.probe-rs-tools ];"),
            "{rules}"
        );
        assert!(lines[1].contains("plugdev group"), "{lines:?}");
    } else if root {
        common::skip(
            "doctor_checks_probe_access_in_a_cortex_m_project_or_when_asked (as another user)",
            "setpriv is not on PATH",
        );
    }
    let o = nixflash(home, &["doctor", "--udev-rules"]);
    assert_eq!(o.code, 0);
    let rules: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.starts_with("ATTRS"))
        .collect();
    assert_eq!(rules.len(), 9, "{}", o.stdout);
    assert!(rules.contains(
        &r#"ATTRS{idVendor}=="0483", ATTRS{idProduct}=="374b", MODE="660", GROUP="plugdev", TAG+="uaccess""#
    ));
}
