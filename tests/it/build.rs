//! `nixflash build` and `update` against real Nix, with the fixture flake in tests/fixtures/project
//! (derivations that run /bin/sh; no nixpkgs needed): git tracking, the std lock, progress,
//! failures, interruption and the nix arguments after `--`.
//!
//! Tests that need `nix` print `SKIPPED: ...` when it is missing, and fail in CI.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::common;
use crate::common::fixture::{avr_size, have, nix_calls, require, run, Fixture};
use crate::common::git;

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
    // The ELF's hash and its flash image's (issue 22), on stderr as `sha256sum -c` reads the
    // first, in --json both.
    let elf_hash = nixflash::firmware::hash::sha256_file(&elf).unwrap();
    let db = nixflash::board::Database::builtin().unwrap();
    let family = db.get("uno").unwrap().family();
    let (_, image) =
        nixflash::firmware::hash::flash_bytes(&fs::read(&elf).unwrap(), family).unwrap();
    let image_hash = nixflash::firmware::hash::sha256_hex(&image);
    assert_eq!(j["sha256"]["elf"], elf_hash.as_str());
    assert_eq!(j["sha256"]["image"], image_hash.as_str());
    assert_eq!(j["sha256"]["image_size"], image.len());
    let lines: Vec<&str> = o
        .stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("SHA-256 "))
        .collect();
    assert_eq!(lines.len(), 2, "{}", o.stderr);
    // From src/, the link is not below the current folder: its absolute path.
    let link_elf = f.dir.join("result/bin/fixture.elf");
    assert_eq!(lines[0], format!("{elf_hash}  {}", link_elf.display()));
    assert!(lines[1].starts_with(&format!(
        "{image_hash}  flash image, {} bytes: ",
        image.len()
    )));

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
    c.args(["build", "--json"]);
    let o = run(c);
    assert_eq!(o.code, 1);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(j["kind"], "build-failed", "{j}");
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
    assert_eq!(j["kind"], "build-failed");
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
        .args(["build", "--json"])
        .current_dir(&f.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
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
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["kind"], "interrupted", "{j}");
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
    // A build of its own that takes long enough for the progress line to be drawn (it is
    // redrawn every 120 ms), rather than one found in the store or done in a millisecond.
    let nonce = format!(
        "{:?} {} tty",
        std::time::SystemTime::now(),
        std::process::id()
    );
    fs::write(f.dir.join("nonce"), nonce).unwrap();
    fs::write(f.dir.join("delay"), "1").unwrap();
    common::git(&f.dir, &["add", "nonce", "delay"]);
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
