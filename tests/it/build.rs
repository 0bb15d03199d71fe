//! `nixflash build`, `update` and `doctor` against real Nix, with the fixture flake in
//! tests/fixtures/project (derivations that run /bin/sh; no nixpkgs needed), plus the known-failure
//! table against captured logs and the size report against real ELFs.
//!
//! Tests that need `nix` (or avr-size, cargo) print `SKIPPED: ...` when it is missing, and fail
//! in CI.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use nixflash::board::Database;
use nixflash::manifest::{self, ReadBy};

use crate::common;
use crate::common::{fixtures, git};

fn have(tool: &str) -> bool {
    which::which(tool).is_ok()
}

macro_rules! require {
    ($tool:expr, $test:expr) => {
        if !have($tool) {
            common::skip($test, &format!("`{}` is not on PATH", $tool));
            return;
        }
    };
}

/// A copy of the fixture project (and its stand-in rust-overlay) in a temporary folder.
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    overlay: PathBuf,
}

impl Fixture {
    /// `git_init`: make it a repository with everything committed.
    fn new(git_init: bool) -> Fixture {
        let f = common::NixFixture::new(".tmp");
        if git_init {
            f.commit_all();
        }
        Fixture {
            _tmp: f.tmp,
            dir: f.dir,
            overlay: f.overlay,
        }
    }

    fn nixflash(&self, sub: &str) -> Command {
        let mut c = Command::cargo_bin("nixflash").unwrap();
        c.current_dir(self.dir.join(sub));
        c
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.dir.join(rel)).unwrap()
    }

    fn tracked(&self) -> Vec<String> {
        git(&self.dir, &["ls-files"])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(mut c: Command) -> Output {
    let out = c.output().unwrap();
    let o = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("--- exit {}\n{}{}", o.code, o.stdout, o.stderr);
    o
}

/// The nix commands nixflash ran, from its --verbose lines.
fn nix_calls(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("Running `nix "))
        .collect()
}

/// Section sizes by name, from `avr-size -A`.
fn avr_size(elf: &Path) -> std::collections::HashMap<String, u64> {
    let out = StdCommand::new("avr-size")
        .arg("-A")
        .arg(elf)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?;
            let size = f.next()?.parse().ok()?;
            name.starts_with('.').then(|| (name.to_string(), size))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Building

#[test]
fn builds_from_a_subfolder_and_reports_sizes() {
    require!("nix", "builds_from_a_subfolder_and_reports_sizes");
    let f = Fixture::new(true);
    let mut c = f.nixflash("src");
    c.args(["build", "--json"]);
    let o = run(c);
    assert_eq!(o.code, 0);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(j["package"], "fixture");
    assert_eq!(j["board"], "uno");
    let out = PathBuf::from(j["out"].as_str().unwrap());
    let elf = PathBuf::from(j["elf"].as_str().unwrap());
    assert_eq!(elf, out.join("bin/fixture.elf"));
    // The ELF nix built is the fixture's, byte for byte.
    assert_eq!(
        fs::read(&elf).unwrap(),
        fs::read(f.dir.join("firmware.elf")).unwrap()
    );
    // A `result` link like nix's own, in the project (not in src/).
    assert_eq!(
        PathBuf::from(j["link"].as_str().unwrap()),
        f.dir.join("result")
    );
    assert_eq!(fs::read_link(f.dir.join("result")).unwrap(), out);
    assert!(!f.dir.join("src/result").exists());
    assert!(o
        .stderr
        .contains("Building fixture for the Arduino Uno with nix…"));
    // Live build output passed through.
    assert!(o.stderr.contains("fixture> installing the firmware"));

    let flash = j["size"]["flash"]["used"].as_u64().unwrap();
    let ram = j["size"]["ram"]["used"].as_u64().unwrap();
    assert_eq!(j["size"]["flash"]["total"], 32256);
    assert_eq!(j["size"]["ram"]["total"], 2048);
    if !have("avr-size") {
        common::skip("the size numbers check", "`avr-size` is not on PATH");
        return;
    }
    let s = avr_size(&elf);
    let data = s.get(".data").copied().unwrap_or(0);
    let want_flash = s[".text"] + data;
    let want_ram =
        data + s.get(".bss").copied().unwrap_or(0) + s.get(".noinit").copied().unwrap_or(0);
    assert_eq!((flash, ram), (want_flash, want_ram));
    let line = format!(
        "Size flash {want_flash} B / 32256 B ({:.1} %), RAM {want_ram} B / 2048 B ({:.1} %)",
        want_flash as f64 * 100.0 / 32256.0,
        want_ram as f64 * 100.0 / 2048.0
    );
    assert!(o.stderr.contains(&line), "no `{line}`");
}

#[test]
fn the_std_lock_is_made_on_first_build_then_left_alone() {
    require!("nix", "the_std_lock_is_made_on_first_build_then_left_alone");
    let f = Fixture::new(true);
    assert!(!f.dir.join("nix/std-Cargo.lock").exists());

    // First build: rust-src is realised, the lock copied and git-added, and the build sees it;
    // all without import-from-derivation.
    let mut c = f.nixflash("");
    c.args(["build", "--verbose", "--json"])
        .env("NIX_CONFIG", "allow-import-from-derivation = false");
    let o = run(c);
    assert_eq!(o.code, 0);
    assert_eq!(nix_calls(&o.stderr).len(), 2, "rust-src, then the firmware");
    assert!(nix_calls(&o.stderr)[0].contains("nix build .#rust-src"));
    let updated: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.contains("Updated nix/std-Cargo.lock"))
        .collect();
    assert_eq!(updated.len(), 1, "one line when the copy changes");
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(j["std_lock"]["state"], "updated");
    let rust_src = PathBuf::from(j["std_lock"]["rust_src"].as_str().unwrap());
    let lock = f.read("nix/std-Cargo.lock");
    assert_eq!(
        lock,
        fs::read_to_string(rust_src.join("lib/rustlib/src/rust/library/Cargo.lock")).unwrap()
    );
    assert!(lock.starts_with("# nightly-2025-04-27, rust-overlay v1\n"));
    let out = PathBuf::from(j["out"].as_str().unwrap());
    assert_eq!(
        fs::read_to_string(out.join("share/std-Cargo.lock")).unwrap(),
        lock
    );
    let tracked = f.tracked();
    assert!(tracked.contains(&"nix/std-Cargo.lock".to_string()));
    assert!(tracked.contains(&"nix/std-Cargo.lock.source".to_string()));
    let source = f.read("nix/std-Cargo.lock.source");
    assert!(source.contains(&format!("rust-src = \"{}\"", rust_src.display())));

    // Unchanged pin: no rust-src call, no line, nothing rewritten.
    let mut c = f.nixflash("src");
    c.args(["build", "--verbose"]);
    let o = run(c);
    assert_eq!(o.code, 0);
    assert_eq!(nix_calls(&o.stderr).len(), 1, "only the firmware build");
    assert!(!o.stderr.contains("Updated nix/std-Cargo.lock"));
    assert_eq!(f.read("nix/std-Cargo.lock.source"), source);

    // A channel change in rust-toolchain.toml: copied again.
    let toolchain = f
        .read("rust-toolchain.toml")
        .replace("nightly-2025-04-27", "nightly-2025-05-01");
    fs::write(f.dir.join("rust-toolchain.toml"), toolchain).unwrap();
    let mut c = f.nixflash("");
    c.args(["build", "--verbose"]);
    let o = run(c);
    assert_eq!(o.code, 0);
    assert_eq!(nix_calls(&o.stderr).len(), 2);
    assert!(o.stderr.contains("Updated nix/std-Cargo.lock"));
    assert!(f
        .read("nix/std-Cargo.lock")
        .starts_with("# nightly-2025-05-01, rust-overlay v1\n"));

    // Prove the unchanged pin costs no nix call another way: the flake has no rust-src now.
    let flake = f
        .read("flake.nix")
        .replace("rust-src = sh system", "not-rust-src = sh system");
    fs::write(f.dir.join("flake.nix"), flake).unwrap();
    git(&f.dir, &["add", "flake.nix"]);
    let mut c = f.nixflash("");
    c.args(["build"]);
    let o = run(c);
    assert_eq!(o.code, 0);

    // A hand-edited copy is noticed (and then rust-src is needed, which now fails, explained).
    fs::write(f.dir.join("nix/std-Cargo.lock"), "# edited\n").unwrap();
    let mut c = f.nixflash("");
    c.args(["build"]);
    let o = run(c);
    assert_eq!(o.code, 1);
    assert!(o
        .stderr
        .contains("error: cannot get the pinned toolchain's rust-src"));
    assert!(o
        .stderr
        .contains("`nix build .#rust-src` failed (exit code 1)"));
    assert!(o.stderr.contains("does not provide attribute 'packages."));
    assert!(o
        .stderr
        .contains("diagnosis: The flake has no packages.<system>.rust-src"));
    assert!(o
        .stderr
        .contains("hint: add `rust-src = toolchain.passthru.availableComponents.rust-src;`"));
}

#[test]
fn update_moves_the_pin_and_refreshes_the_std_lock() {
    require!("nix", "update_moves_the_pin_and_refreshes_the_std_lock");
    let f = Fixture::new(true);
    let o = run({
        let mut c = f.nixflash("");
        c.arg("build");
        c
    });
    assert_eq!(o.code, 0);
    let lock_before = f.read("flake.lock");

    // A new rust-overlay: `nixflash update rust-overlay` locks it and copies the new std lock.
    fs::write(f.overlay.join("version"), "v2").unwrap();
    let mut c = f.nixflash("src");
    c.args(["update", "rust-overlay", "--verbose"]);
    let o = run(c);
    assert_eq!(o.code, 0);
    let calls = nix_calls(&o.stderr);
    assert!(
        calls[0].contains("nix flake update rust-overlay"),
        "{calls:?}"
    );
    assert_ne!(f.read("flake.lock"), lock_before);
    assert!(o.stderr.contains("Updated nix/std-Cargo.lock"));
    assert!(f
        .read("nix/std-Cargo.lock")
        .starts_with("# nightly-2025-04-27, rust-overlay v2\n"));

    // The next build needs no rust-src call.
    let mut c = f.nixflash("");
    c.args(["build", "--verbose"]);
    let o = run(c);
    assert_eq!(o.code, 0);
    assert_eq!(nix_calls(&o.stderr).len(), 1);

    // --std-lock alone: rust-src is checked even though the pin is unchanged; nothing to do.
    let mut c = f.nixflash("");
    c.args(["update", "--std-lock", "--verbose"]);
    let o = run(c);
    assert_eq!(o.code, 0);
    assert_eq!(nix_calls(&o.stderr).len(), 1);
    assert!(nix_calls(&o.stderr)[0].contains(".#rust-src"));
    assert!(o
        .stderr
        .contains("Checked nix/std-Cargo.lock already equals"));
}

#[test]
fn untracked_files_the_flake_needs_are_added_with_intent_to_add() {
    require!(
        "nix",
        "untracked_files_the_flake_needs_are_added_with_intent_to_add"
    );
    let f = Fixture::new(true);
    git(&f.dir, &["rm", "-q", "--cached", "firmware.elf"]);
    fs::write(f.dir.join("src/led.rs"), "// a new module\n").unwrap();
    fs::write(f.dir.join("notes.txt"), "not for the build\n").unwrap();
    let mut c = f.nixflash("src");
    c.arg("build");
    let o = run(c);
    assert_eq!(o.code, 0);
    assert!(
        o.stderr
            .contains("Git-added firmware.elf src/led.rs (intent-to-add)"),
        "{}",
        o.stderr
    );
    let tracked = f.tracked();
    assert!(tracked.contains(&"firmware.elf".to_string()));
    assert!(tracked.contains(&"src/led.rs".to_string()));
    assert!(!tracked.contains(&"notes.txt".to_string()));
    // Intent-to-add only: nothing is staged with content.
    let status = git(&f.dir, &["status", "--porcelain", "--", "src/led.rs"]);
    assert_eq!(status.trim(), "A src/led.rs");
}

#[test]
fn no_git_add_reports_untracked_files_with_the_command() {
    require!("nix", "no_git_add_reports_untracked_files_with_the_command");
    let f = Fixture::new(true);
    git(&f.dir, &["rm", "-q", "--cached", "firmware.elf"]);
    let mut c = f.nixflash("");
    c.args(["build", "--no-git-add"]);
    let o = run(c);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains(
        "git does not track firmware.elf, so Nix cannot see it; run: git add --intent-to-add -- firmware.elf"
    ));
    // Nix then fails, and the failure is explained.
    assert!(o
        .stderr
        .contains("diagnosis: Nix cannot see `firmware.elf`"));
    assert!(o.stderr.contains(&format!(
        "hint: git -C {} add --intent-to-add -- firmware.elf",
        f.dir.canonicalize().unwrap().display()
    )));
    assert!(!f.tracked().contains(&"firmware.elf".to_string()));
}

#[test]
fn outside_a_git_repository_it_says_so_and_builds() {
    require!("nix", "outside_a_git_repository_it_says_so_and_builds");
    let f = Fixture::new(false);
    let mut c = f.nixflash("");
    c.arg("build");
    let o = run(c);
    assert_eq!(o.code, 0);
    assert!(o.stderr.contains("is not in a git repository"));
    assert!(o.stderr.contains("Size flash"));
}

#[test]
fn a_failing_builder_gets_the_log_end_and_a_diagnosis() {
    require!("nix", "a_failing_builder_gets_the_log_end_and_a_diagnosis");
    let f = Fixture::new(true);
    // As crane's cargoTest fails for a no_std target (the lines of a real cargo run).
    fs::write(
        f.dir.join("fail.sh"),
        "echo 'Running phase: checkPhase'\n\
         echo 'error[E0152]: found duplicate lang item `panic_impl`' >&2\n\
         echo 'error: could not compile `fixture` (bin \"fixture\" test) due to 1 previous error' >&2\n\
         exit 101\n",
    )
    .unwrap();
    git(&f.dir, &["add", "fail.sh"]);
    let mut c = f.nixflash("");
    c.arg("build");
    let o = run(c);
    assert_eq!(o.code, 1);
    assert!(o
        .stderr
        .contains("error: `nix build .#default` failed (exit code 1)"));
    assert!(o
        .stderr
        .contains("  | fixture> error[E0152]: found duplicate lang item `panic_impl`"));
    assert!(o
        .stderr
        .contains("diagnosis: The tests were compiled for the board's no_std target"));
    assert!(o.stderr.contains("hint: keep `doCheck = false;`"));
    // Hints come last.
    let last = o.stderr.lines().last().unwrap();
    assert!(last.starts_with("hint: "), "{last}");
    // No "Git tree is dirty" on every build of a project with uncommitted edits.
    assert!(!o.stderr.contains("is dirty"), "{}", o.stderr);

    // --json: an answer on stdout on failure too, with the diagnosis and the hints.
    let mut c = f.nixflash("");
    c.args(["build", "--json"]);
    let o = run(c);
    assert_eq!(o.code, 1);
    let j: serde_json::Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", o.stdout));
    assert_eq!(j["ok"], false);
    assert!(j["error"]
        .as_str()
        .unwrap()
        .starts_with("`nix build .#default` failed (exit code 1)"));
    assert!(j["diagnosis"][0]
        .as_str()
        .unwrap()
        .starts_with("The tests were compiled for the board's no_std target"));
    assert!(j["hints"][0]
        .as_str()
        .unwrap()
        .starts_with("keep `doCheck = false;`"));
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

#[test]
fn ctrl_c_sent_to_nixflash_alone_stops_nix() {
    require!("nix", "ctrl_c_sent_to_nixflash_alone_stops_nix");
    let f = Fixture::new(true);
    fs::write(
        f.dir.join("fail.sh"),
        "echo 'compiling slowly'\nsleep 300\n",
    )
    .unwrap();
    git(&f.dir, &["add", "fail.sh"]);
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("nixflash"))
        .arg("build")
        .current_dir(&f.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "ended early: {seen}"
        );
        seen.push_str(&line);
        if line.contains("fixture> compiling slowly") {
            break;
        }
    }
    // SIGINT to nixflash only (as `kill -INT`), not to its process group.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("nixflash did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    eprintln!("{seen}{rest}");
    assert_eq!(status.code(), Some(130));
    assert!(rest.contains("error: interrupted"), "{rest}");
}

// ---------------------------------------------------------------------------------------------
// doctor

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

/// On a terminal a build shows one progress line (the count of derivations, what is built, the
/// builder's last line) instead of the builder's lines; piped, the builder's lines are printed as
/// `nix build -L` prints them. No nix command is silent: the std lock's rust-src too.
#[test]
fn a_build_shows_progress_on_a_terminal_and_lines_when_piped() {
    require!(
        "nix",
        "a_build_shows_progress_on_a_terminal_and_lines_when_piped"
    );
    let f = Fixture::new(true);
    let mut pty = common::pty::Pty::new();
    let mut child = StdCommand::new(env!("CARGO_BIN_EXE_nixflash"))
        .arg("build")
        .current_dir(&f.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(pty.slave())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    let shown = String::from_utf8_lossy(&pty.read_all(Duration::from_secs(5))).into_owned();
    assert!(status.success(), "{shown}");
    // The progress line, drawn over itself (carriage returns and colour).
    assert!(shown.contains("building .#rust-src"), "{shown:?}");
    assert!(shown.contains("building fixture"), "{shown:?}");
    assert!(
        shown.contains("[0/1]") || shown.contains("[1/1]"),
        "{shown:?}"
    );
    assert!(
        shown.contains('\u{1b}'),
        "no colour or cursor control: {shown:?}"
    );
    // Not the builder's lines, which are for pipes and logs.
    assert!(
        !shown.contains("fixture> installing the firmware"),
        "{shown:?}"
    );
    assert!(shown.contains("Size"), "{shown:?}");

    // Piped (as every other test runs it): the builder's own lines.
    // A nonce of its own: a fixed one would be built once per Nix store, and cached afterwards.
    let nonce = format!("{:?} {}", std::time::SystemTime::now(), std::process::id());
    fs::write(f.dir.join("nonce"), nonce).unwrap();
    let mut c = f.nixflash("");
    c.arg("build");
    let o = run(c);
    assert_eq!(o.code, 0);
    assert!(
        o.stderr.contains("fixture> installing the firmware"),
        "{}",
        o.stderr
    );
    assert!(
        !o.stderr.contains('\u{1b}'),
        "colour in a pipe: {:?}",
        o.stderr
    );
}

/// A generated project whose pinned inputs are not in the store yet: its first build says that
/// it downloads them and a toolchain. (Here it then fails: this machine is offline.)
#[test]
fn a_first_build_says_it_downloads_the_pinned_inputs() {
    require!("nix", "a_first_build_says_it_downloads_the_pinned_inputs");
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(tmp.path())
        .args(["new", "fw", "--board", "esp32c3"]);
    assert_eq!(run(c).code, 0);
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(tmp.path().join("fw")).arg("build");
    let o = run(c);
    // The slimmed fixture nixpkgs is not the pinned one: nixpkgs at least is missing.
    assert!(
        o.stderr
            .contains("this is the first build with these pins: Nix downloads")
            && o.stderr.contains("nixpkgs")
            && o.stderr.contains("the Rust toolchain (1.96.0)"),
        "{}",
        o.stderr
    );
    assert_eq!(
        o.stderr.matches("first build with these pins").count(),
        1,
        "said more than once"
    );
}

/// What follows `--` goes to every nix command: the rust-src realisation and the build, the flake
/// update, and the evaluation doctor runs.
#[test]
fn arguments_after_dashdash_reach_every_nix_command() {
    require!("nix", "arguments_after_dashdash_reach_every_nix_command");
    let f = Fixture::new(true);
    let mut c = f.nixflash("");
    c.args(["build", "--verbose", "--", "--option", "max-jobs", "1"]);
    let o = run(c);
    assert_eq!(o.code, 0);
    let calls = nix_calls(&o.stderr);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].contains(".#rust-src") && calls[1].contains(".#default"));
    for call in &calls {
        assert!(call.ends_with(" --option max-jobs 1`"), "{call}");
    }

    let mut c = f.nixflash("");
    c.args([
        "update",
        "rust-overlay",
        "--verbose",
        "--",
        "--option",
        "max-jobs",
        "1",
    ]);
    let o = run(c);
    assert_eq!(o.code, 0);
    let calls = nix_calls(&o.stderr);
    assert!(
        calls[0].contains("nix flake update rust-overlay")
            && calls[0].ends_with(" --option max-jobs 1`"),
        "{calls:?}"
    );

    // doctor evaluates the firmware derivation with them: fine as it is, not with a missing
    // rust-overlay.
    let mut c = f.nixflash("");
    c.arg("doctor");
    let o = run(c);
    assert!(
        o.stdout
            .contains("✓ the flake evaluates: the firmware is /nix/store/"),
        "{}",
        o.stdout
    );
    let mut c = f.nixflash("");
    c.args([
        "doctor",
        "--",
        "--override-input",
        "rust-overlay",
        "path:/nixflash-no-such-folder",
    ]);
    let o = run(c);
    assert_eq!(o.code, 1);
    let line = o
        .stdout
        .lines()
        .find(|l| l.starts_with("✗ the flake does not evaluate: "))
        .unwrap_or_else(|| panic!("{}", o.stdout));
    assert!(line.contains("/nixflash-no-such-folder"), "{line}");
    assert!(
        line.ends_with("— fix: run `nixflash build` to see nix's whole message"),
        "{line}"
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

// ---------------------------------------------------------------------------------------------
// Reading the project

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
    assert_eq!(found.read_by, ReadBy::CargoMetadata);
}

// ---------------------------------------------------------------------------------------------
// Known failures: every entry of diagnoses.toml against real captured logs

#[test]
fn every_diagnosis_matches_its_captured_logs_and_only_those() {
    let dir = fixtures().join("logs");
    let table = nixflash::diagnose::table();
    let mut logs: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    // Logs in which a second, related diagnosis is expected too.
    let also = [("git-dependency-hash", "git-dependency-fetch")];
    // A log belongs to the entry whose id its name is, or starts with followed by `-`.
    let owner = |log: &Path| -> Option<&str> {
        let stem = log.file_stem()?.to_str()?;
        table
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| stem == *id || stem.starts_with(&format!("{id}-")))
            .max_by_key(|id| id.len())
    };
    for entry in table {
        assert!(
            logs.iter().any(|l| owner(l) == Some(entry.id.as_str())),
            "no captured log for `{}`",
            entry.id
        );
    }
    for log in &logs {
        let id = owner(log).unwrap_or_else(|| panic!("{} names no diagnosis", log.display()));
        let text = fs::read_to_string(log).unwrap();
        let found = nixflash::diagnose::diagnose(&text, &[("git_root", "/r"), ("board", "uno")]);
        let mut ids: Vec<&str> = found.iter().map(|d| d.id.as_str()).collect();
        ids.sort();
        let mut want = vec![id];
        want.extend(also.iter().filter(|(a, _)| *a == id).map(|(_, b)| *b));
        want.sort();
        assert_eq!(ids, want, "{}", log.display());
        for d in &found {
            assert!(
                d.missing.is_empty(),
                "{}: no value for {:?}",
                log.display(),
                d.missing
            );
        }
    }
}

#[test]
fn diagnoses_fill_in_what_the_logs_say() {
    let logs = fixtures().join("logs");
    let d = |name: &str| {
        let text = fs::read_to_string(logs.join(name)).unwrap();
        nixflash::diagnose::diagnose(
            &text,
            &[
                ("git_root", "/home/me/blinky"),
                ("board", "esp32c3-devkitm-1"),
            ],
        )
    };
    assert_eq!(
        d("untracked-file.log")[0].fix[0],
        "git -C /home/me/blinky add --intent-to-add -- firmware.elf"
    );
    assert!(d("unknown-target.log")[0]
        .problem
        .contains("`riscv32imc-unknown-none-elfx`"));
    assert!(d("toolchain-not-available.log")[0]
        .problem
        .contains("(2099-01-01)"));
    assert!(d("toolchain-not-available.log")[0].fix[0].starts_with("nixflash update rust-overlay"));
    assert_eq!(
        d("git-dependency-unlocked.log")[0].fix[0],
        "cargo update -p arduino-hal   (then git add Cargo.lock)"
    );
    let m = &d("hash-mismatch.log")[0];
    assert_eq!(
        m.fix[0],
        "replace sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= with sha256-M6zoNlbZ5P36SF4/a3pI/WmjRyN6cBWLDdn24YE44eg= in flake.nix"
    );
    assert!(d("git-dependency-hash.log")[0].problem.contains(
        "git+https://github.com/rahix/avr-hal?rev=1111111111111111111111111111111111111111#1111111111111111111111111111111111111111"
    ));
    // Toolchains before compiler_builtins moved into the library fetch it from crates.io, and
    // cargo's message then names it (the message format of std-lock-vendor.log, other crate).
    let old = "blinky> error: no matching package named `compiler_builtins` found";
    assert_eq!(nixflash::diagnose::diagnose(old, &[])[0].id, "std-lock");
    // Without a failed fetch, crane's warning alone is no diagnosis (the build fetches anyway).
    let warn = "evaluation warning: No output hash provided for git+https://x/y?rev=1#1\nerror: builder failed";
    assert!(nixflash::diagnose::diagnose(warn, &[]).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Size reports of real ELFs

#[test]
fn esp32c3_sizes_count_only_loaded_sections() {
    // An esp-hal 1.2 blinky for the ESP32-C3 (nixflash's template), stripped. Its sections
    // (readelf -S): .trap 0x604 and .rwtext 0x4f0 (IRAM code, loaded from flash), .data 0x2d4,
    // .bss 0x1b8, .flash.appdesc 0x100, .rodata 0x21d4, .text 0x5baa; not counted: the NOLOAD
    // .rwdata_dummy 0xaf4, .rotext_dummy 0x10000 and .stack 0x4d480.
    let db = Database::builtin().unwrap();
    let board = db.get("esp32c3").unwrap();
    let r =
        nixflash::size::analyze_file(&fixtures().join("elf/esp32c3-blinky.elf"), board).unwrap();
    assert_eq!(
        r.flash.used,
        0x604 + 0x4f0 + 0x2d4 + 0x100 + 0x21d4 + 0x5baa
    );
    assert_eq!(r.ram.used, 0x604 + 0x4f0 + 0x2d4 + 0x1b8);
    assert_eq!(r.flash.total, board.memory.flash);
    assert_eq!(r.ram.total, board.memory.ram);
    assert!(r
        .sections
        .iter()
        .all(|s| !s.name.contains("dummy") && s.name != ".stack"));
    assert_eq!(
        r.to_string(),
        "flash 35910 B / 4194304 B (0.9 %), RAM 3968 B / 393216 B (1.0 %)"
    );
}

#[test]
fn avr_sizes_agree_with_avr_size() {
    if !have("avr-size") {
        common::skip("avr_sizes_agree_with_avr_size", "`avr-size` is not on PATH");
        return;
    }
    let elf = fixtures().join("project/firmware.elf");
    let db = Database::builtin().unwrap();
    let r = nixflash::size::analyze_file(&elf, db.get("uno").unwrap()).unwrap();
    let s = avr_size(&elf);
    assert_eq!(r.flash.used, s[".text"] + s[".data"]);
    assert_eq!(r.ram.used, s[".data"] + s[".bss"]);
    // The fixture's C source: 23 bytes of .data (24 with avr-gcc's padding), 100 of .bss.
    assert!(s[".data"] >= 23 && s[".bss"] == 100);
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
