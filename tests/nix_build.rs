//! Generated projects BUILT by real Nix: `nixflash new`, then `nixflash build -- <args>` with the
//! arguments of ../shared/tools/nix-offline, which lets real Nix run the project's own flake.nix
//! with the real crane and nixpkgs logic here, only the downloads (stdenv bootstrap, the Rust
//! toolchain, a few tools) stood in for by the host's programs.
//!
//! Each chip is built from scratch once per run ([`from_scratch`]): a project whose name is new
//! to the store (a nonce), so Nix really builds its dependencies and firmware; the from-scratch
//! checks are made on that build's own log, whichever test asked for it first. Every test then
//! works on a copy of that project under the same name, so that its dependencies' derivation is
//! the one already built and only what the test changes is built again. Everything runs in one
//! store: crane's utilities, the stand-in toolchain's core for a target and the vendored crates
//! are built once, by whichever build needs them first.
//!
//! These take minutes, so they have this binary to themselves; cargo-nextest runs them beside
//! the `it` tests, two heavy tests at a time (.config/nextest.toml). They need Nix, the firmware
//! tools (../shared/tools/install-*.sh), ravedude, espflash, simavr, flip-link and elf2uf2-rs;
//! without them they fail, saying SKIPPED and what is missing (see `common::skip`). By board:
//! [`uno`] (with `sim` for `nixflash sim` and `checks.sim`), [`esp`], [`rp2`], [`cortex_m`]; [`reproducible`]: two checkouts, one firmware; [`update`] moves
//! the pins; [`workspace`]: the Uno as a workspace member, the flake at the workspace root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "it/common/mod.rs"]
mod common;
#[path = "nix_build/cortex_m.rs"]
mod cortex_m;
#[path = "nix_build/esp.rs"]
mod esp;
#[path = "nix_build/paths.rs"]
mod paths;
#[path = "nix_build/reproducible.rs"]
mod reproducible;
#[path = "nix_build/rp2.rs"]
mod rp2;
#[path = "nix_build/sim.rs"]
mod sim;
#[path = "nix_build/uno.rs"]
mod uno;
#[path = "nix_build/update.rs"]
mod update;
#[path = "nix_build/workspace.rs"]
mod workspace;

use common::offline::{nix_offline, NixOffline};
use common::process::{run_bounded, text};
use common::{on_path, shared, skip};

/// A generated project in a folder of its own.
struct Project {
    _tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    name: String,
}

/// A name new to the store: `<prefix>-t<nonce>`.
fn new_name(prefix: &str) -> String {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // A letter first: Nix takes a name part that starts with a digit for the version.
    format!("{prefix}-t{:x}", nonce & 0xffff_ffff)
}

/// `nixflash new <prefix>-<nonce> --board <board>` in a temporary folder, a git repository with
/// every file added.
fn new_project(off: &NixOffline, prefix: &str, board: &str) -> Project {
    let tmp = tempfile::Builder::new()
        .prefix("nixflash-nix-build-")
        .tempdir()
        .unwrap();
    let mut p = new_project_in(off, tmp.path(), &new_name(prefix), board);
    p._tmp = Some(tmp);
    p
}

/// `nixflash new <name> --board <board>` in `dir`.
fn new_project_in(off: &NixOffline, dir: &Path, name: &str, board: &str) -> Project {
    new_project_with(off, dir, name, board, &[])
}

/// `nixflash new <name> --board <board> <options>` (`-o wifi`) in `dir`.
fn new_project_with(
    off: &NixOffline,
    dir: &Path,
    name: &str,
    board: &str,
    options: &[&str],
) -> Project {
    fs::create_dir_all(dir).unwrap();
    let o = run_bounded(
        off.nixflash(dir)
            .args(["new", name, "--board", board])
            .args(options),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "nixflash new: {:?}", text(&o));
    Project {
        dir: dir.join(name),
        _tmp: None,
        name: name.to_string(),
    }
}

/// A project built from scratch, by the first test of the run that asked for it: its folder,
/// never changed after the build (tests change [`FromScratch::copy`]s), and what the build said.
#[derive(serde::Serialize, serde::Deserialize)]
struct FromScratch {
    dir: PathBuf,
    name: String,
    /// `nixflash build`'s stdout (its JSON with `--json`) and stderr (the Nix log).
    out: String,
    log: String,
    seconds: f64,
    /// Whether nix/std-Cargo.lock was there before the build.
    had_std_lock: bool,
}

/// `nixflash new <prefix>-<nonce> --board <board>` built from scratch with `nixflash build
/// [extra]`, once per run. Checked here, whichever test asked first: Nix built the project's
/// dependencies and its firmware (no derivation of the project was in the store), and the ELF is
/// in `result/bin`.
fn from_scratch(off: &NixOffline, prefix: &str, board: &str, extra: &[&str]) -> FromScratch {
    from_scratch_with(off, prefix, board, &[], extra)
}

/// [`from_scratch`] of `nixflash new ... --board <board> <options>` (`-o wifi`), once per run
/// for each board and options.
fn from_scratch_with(
    off: &NixOffline,
    prefix: &str,
    board: &str,
    options: &[&str],
    extra: &[&str],
) -> FromScratch {
    let key = [&[board], options]
        .concat()
        .join("")
        .replace([' ', '='], "-");
    let made = shared::once(&format!("nix-from-scratch-{key}"), || {
        let dir = shared::run_dir_outside().join("nix-projects");
        let p = new_project_with(off, &dir, &new_name(prefix), board, options);
        let had_std_lock = p.dir.join("nix/std-Cargo.lock").exists();
        let cpu = common::process::children_cpu();
        let (out, log, took) = nixflash_build(off, &p, extra);
        common::measured(&format!(
            "{} ({board}) built from scratch in {:.1} s ({:.1} s of CPU, with whatever it was \
             first to need: crane's utilities, the toolchain's core for the target)",
            p.name,
            took.as_secs_f64(),
            (common::process::children_cpu() - cpu).as_secs_f64()
        ));
        let built = built_derivations(&log);
        for drv in [
            format!("-{}-deps-0.1.0.drv", p.name),
            format!("-{}-0.1.0.drv", p.name),
        ] {
            assert!(
                built.iter().any(|d| d.ends_with(&drv)),
                "Nix did not build *{drv} from scratch: {built:?}\n{log}"
            );
        }
        let elf = p.dir.join(format!("result/bin/{}.elf", p.name));
        assert!(elf.is_file(), "no {}:\n{log}", elf.display());
        Ok(FromScratch {
            dir: p.dir,
            name: p.name,
            out,
            log,
            seconds: took.as_secs_f64(),
            had_std_lock,
        })
    });
    made.unwrap()
}

impl FromScratch {
    /// A copy of the built project (its git repository and `result` link too) in a temporary
    /// folder, under the same name: Nix finds its derivations built as long as nothing changes.
    fn copy(&self) -> Project {
        let tmp = tempfile::Builder::new()
            .prefix("nixflash-nix-build-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().join(&self.name);
        let o = run_bounded(
            Command::new("cp").arg("-a").arg(&self.dir).arg(&dir),
            Duration::from_secs(60),
        );
        assert!(o.status.success(), "cp -a: {:?}", text(&o));
        Project {
            _tmp: Some(tmp),
            dir,
            name: self.name.clone(),
        }
    }

    /// The firmware's ELF in the store, as the build left it.
    fn elf(&self) -> PathBuf {
        self.dir.join(format!("result/bin/{}.elf", self.name))
    }
}

/// Runs a nixflash or nix command to its end (at most 25 minutes) and returns its output,
/// failing with the whole output when it does not succeed.
fn run_ok(cmd: &mut Command, what: &str) -> (String, String, Duration) {
    let started = Instant::now();
    let o = run_bounded(cmd, Duration::from_secs(1500));
    let took = started.elapsed();
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "{what} failed ({})\n--- stdout\n{out}\n--- stderr\n{err}",
        o.status
    );
    (out, err, took)
}

/// `nixflash build [extra] -- <nix-offline's arguments>` in the project.
fn nixflash_build(off: &NixOffline, p: &Project, extra: &[&str]) -> (String, String, Duration) {
    run_ok(
        off.nixflash(&p.dir)
            .arg("build")
            .args(extra)
            .arg("--")
            .args(&off.override_args),
        &format!("nixflash build {} of {}", extra.join(" "), p.name),
    )
}

/// The derivations a nix log says it will build.
fn built_derivations(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut listing = false;
    for line in log.lines() {
        if line.starts_with("these ") && line.contains(" derivations will be built:")
            || line == "this derivation will be built:"
        {
            listing = true;
        } else if listing && line.starts_with("  /nix/store/") {
            out.push(line.trim().to_string());
        } else {
            listing = false;
        }
    }
    out
}

/// The crates cargo compiled in the derivation named `pname` (its `pname> Compiling ...` lines).
fn compiled_crates(log: &str, pname: &str) -> Vec<String> {
    let prefix = format!("{pname}> ");
    log.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| l.trim_start().strip_prefix("Compiling "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The flash and RAM bytes of nixflash's `Size flash N B / ..., RAM M B / ...` line.
fn size_line(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Size flash "))
        .unwrap_or_else(|| panic!("no `Size flash` line:\n{stderr}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    // flash <used> B / <total> B (<pct> %), RAM <used> B / <total> B (<pct> %)
    (numbers[0], numbers[2])
}

/// Edits src/main.rs (a new greeting) and checks that the rebuild is exactly one derivation,
/// the firmware, in which cargo compiles only the project's own crate (and the crates of
/// `upstream`, whose build scripts make cargo rebuild them every time). Returns how long it took.
fn rebuild_after_an_edit(off: &NixOffline, p: &Project, upstream: &[&str]) -> Duration {
    let main = p.dir.join("src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    let edited = source.replacen("Hello from ", "Hello again from ", 1);
    assert_ne!(edited, source, "src/main.rs has no greeting to edit");
    fs::write(&main, edited).unwrap();
    let (_, log, took) = nixflash_build(off, p, &[]);
    let built = built_derivations(&log);
    assert_eq!(
        built.len(),
        1,
        "after an edit of src/main.rs, Nix built {built:?}, not only the firmware\n{log}"
    );
    assert!(
        built[0].ends_with(&format!("-{}-0.1.0.drv", p.name)),
        "the one derivation rebuilt is not the firmware: {built:?}"
    );
    let mut compiled = compiled_crates(&log, &p.name);
    compiled.sort();
    let mut expected: Vec<String> = upstream.iter().map(|c| c.to_string()).collect();
    expected.push(p.name.clone());
    expected.sort();
    assert_eq!(
        compiled, expected,
        "the firmware's derivation compiled more than the project's own crate:\n{log}"
    );
    common::measured(&format!(
        "{} rebuilt after an edit of src/main.rs in {:.1} s (one derivation, one crate)",
        p.name,
        took.as_secs_f64()
    ));
    took
}

/// `nix flake check` with every output evaluated and every check built (the firmware, rustfmt,
/// clippy; for AVR boards the simulator and the run in it): what the generated CI workflow runs.
fn flake_check(off: &NixOffline, p: &Project, avr: bool) -> Duration {
    let (_, log, took) = run_ok(
        off.nix(&p.dir)
            .args(["flake", "check", "--print-build-logs"])
            .args(&off.override_args),
        &format!("nix flake check of {}", p.name),
    );
    for output in [
        "packages.x86_64-linux.default",
        "packages.x86_64-linux.flash",
        "apps.x86_64-linux.default",
        "devShells.x86_64-linux.default",
        "checks.x86_64-linux.firmware",
        "checks.x86_64-linux.fmt",
        "checks.x86_64-linux.clippy",
        "formatter.x86_64-linux",
    ] {
        assert!(
            log.contains(output),
            "nix flake check did not check {output}:\n{log}"
        );
    }
    if avr {
        for output in ["packages.x86_64-linux.simulator", "checks.x86_64-linux.sim"] {
            assert!(
                log.contains(output),
                "nix flake check did not check {output}:\n{log}"
            );
        }
        // checks.sim ran the firmware in simavr, which showed what it sent: in this log, or,
        // when another test of the run built the same check first (the same project, the same
        // store), in the log Nix kept of that build.
        let prefix = format!("{}-sim> ", p.name);
        let greeting = format!("Hello from {} on the Arduino Uno!", p.name);
        let shows = |log: &str| {
            log.lines()
                .any(|l| l.starts_with(&prefix) && l.contains(&greeting))
        };
        if !shows(&log) {
            let (kept, _, _) = run_ok(
                off.nix(&p.dir)
                    .args(["log", ".#checks.x86_64-linux.sim"])
                    .args(&off.override_args),
                "nix log of checks.sim",
            );
            let kept: String = kept.lines().map(|l| format!("{prefix}{l}\n")).collect();
            assert!(
                shows(&kept),
                "checks.sim did not run the firmware in simavr:\n{log}\n--- nix log:\n{kept}"
            );
        }
    }
    common::measured(&format!(
        "nix flake check of {} (firmware, fmt, clippy{}) in {:.1} s",
        p.name,
        if avr { ", sim" } else { "" },
        took.as_secs_f64()
    ));
    took
}

/// Builds one check with nix and returns whether it passed, with its log.
fn check_passes(off: &NixOffline, p: &Project, check: &str) -> (bool, String) {
    let o = run_bounded(
        off.nix(&p.dir)
            .args(["build", "--no-link", "--print-build-logs"])
            .arg(format!(".#checks.x86_64-linux.{check}"))
            .args(&off.override_args),
        Duration::from_secs(1200),
    );
    (o.status.success(), text(&o).1)
}

fn git_add(p: &Project, file: &str) {
    common::git(&p.dir, &["add", file]);
}

/// What a test needs besides nix-offline, or why it cannot run.
fn ready(test: &str, tools: &[&str]) -> Option<&'static NixOffline> {
    for tool in tools {
        if !on_path(tool) {
            skip(test, &format!("{tool} is not on PATH"));
            return None;
        }
    }
    match nix_offline() {
        Ok(off) => Some(off),
        Err(why) => {
            skip(test, &why);
            None
        }
    }
}
