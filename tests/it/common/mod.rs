//! Helpers shared by the integration tests (each test file that needs them says `mod common;`).
#![allow(dead_code)]

pub mod compile;
pub mod firmware;
pub mod fixture;
pub mod offline;
pub mod process;
pub mod pty;
pub mod rp2040;
pub mod shared;
pub mod sim;
pub mod tmpfs;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// This test binary's own scratch folder (`target/tmp`).
pub fn tmp() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// The repository's tests/fixtures folder.
pub fn fixtures() -> PathBuf {
    repo().join("tests/fixtures")
}

/// Whether the tests run in CI (`CI=true`), where every test must run.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// What lets a test that cannot run pass outside CI: `NIXFLASH_TESTS_MAY_SKIP=1`.
pub const MAY_SKIP: &str = "NIXFLASH_TESTS_MAY_SKIP";

/// A test, or a part of one, that cannot run on this machine. It is never a silent pass: it is
/// written to this run's notes (`SKIPPED: <test>: <why>`, see [`note`]), and then
/// - in CI (`CI=true`) the test fails, naming what is missing;
/// - elsewhere the test fails too, naming what is missing and how to let it pass, so that the
///   run's summary (cargo-nextest's or libtest's) counts and names it among the failures;
/// - with `NIXFLASH_TESTS_MAY_SKIP=1` (and not in CI) the caller goes on: it returns, and the
///   test passes as far as it got. The notes file lists every skip of the run.
pub fn skip(test: &str, why: &str) {
    note(&format!("SKIPPED: {test}: {why}"));
    if ci() {
        panic!("{test} cannot run, and in CI every test must: {why}");
    }
    if !may_skip() {
        panic!(
            "SKIPPED, which is not a pass: {test} cannot run on this machine: {why}\n\
             Install what is missing (README.md, Development), or run the tests with \
             {MAY_SKIP}=1 to let tests that cannot run pass (each is still listed, with why, \
             in {})",
            notes_file().display()
        );
    }
}

/// Whether the developer let tests that cannot run pass ([`MAY_SKIP`]).
pub fn may_skip() -> bool {
    std::env::var(MAY_SKIP).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A `measured: ...` line: a figure CI collects from the tests (see [`note`]).
pub fn measured(what: &str) {
    note(&format!("measured: {what}"));
}

/// A line for whoever runs the tests, written to the process's stderr itself (libtest captures
/// `eprintln!` of passing tests, which would hide it) and appended to this run's notes file,
/// `target/tmp/notes/<run>.log` (cargo-nextest shows nothing of a passing test's output;
/// `.ci/run` prints the file at the end).
pub fn note(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
    let file = notes_file();
    if let Some(dir) = file.parent() {
        let _ = fs::create_dir_all(dir);
    }
    // One write(2) of a whole line to a file opened for appending: lines of tests running at
    // once never interleave.
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(file) {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// This run's notes file, `target/tmp/notes/<run>.log`.
pub fn notes_file() -> PathBuf {
    tmp()
        .join("notes")
        .join(format!("{}.log", shared::run_id()))
}

/// Whether `tool` is on PATH.
pub fn on_path(tool: &str) -> bool {
    which::which(tool).is_ok()
}

/// The nixflash binary under test.
pub fn nixflash() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nixflash"))
}

/// The nixflash binary under test, for a simulation timed by the host's clock (QEMU runs the
/// micro:bit in real time): as root (CI), at the highest scheduling priority (`nice -n -20`,
/// which execs it, so the pid is nixflash's, and which its children inherit), so that the
/// compiles beside it on a busy machine do not stretch the board's timing. Measured here with
/// three busy loops on the two cores: median LED intervals of 508 to 527 ms at the same priority.
pub fn nixflash_realtime() -> Command {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 || !on_path("nice") {
        return nixflash();
    }
    let mut c = Command::new("nice");
    c.args(["-n", "-20"]).arg(env!("CARGO_BIN_EXE_nixflash"));
    c
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Runs git in `dir` as a test identity (no user config needed) and returns its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=nixflash tests",
            "-c",
            "user.email=tests@nixflash.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A copy of the fixture flake project (tests/fixtures/project: package `fixture`, board "uno",
/// derivations that run /bin/sh and need no nixpkgs) and its stand-in rust-overlay, in a
/// temporary folder, with a nonce so that Nix really builds each copy.
pub struct NixFixture {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub overlay: PathBuf,
}

impl NixFixture {
    pub fn new(prefix: &str) -> NixFixture {
        let tmp = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        let dir = tmp.path().join("project");
        let overlay = tmp.path().join("overlay");
        copy_dir(&fixtures().join("project"), &dir);
        copy_dir(&fixtures().join("overlay"), &overlay);
        let flake = fs::read_to_string(dir.join("flake.nix"))
            .unwrap()
            .replace("@OVERLAY@", overlay.to_str().unwrap());
        fs::write(dir.join("flake.nix"), flake).unwrap();
        fs::write(dir.join("nonce"), tmp.path().to_str().unwrap()).unwrap();
        NixFixture { tmp, dir, overlay }
    }

    /// Makes the project a git repository with everything committed.
    pub fn commit_all(&self) {
        git(&self.dir, &["init", "-q"]);
        git(&self.dir, &["add", "-A"]);
        git(&self.dir, &["commit", "-q", "-m", "fixture"]);
    }
}

/// Every built-in board with each kind of project nixflash makes for it (every combination of
/// options the data allows: [`nixflash::render::Project::variants`]).
pub fn variants(
    db: &nixflash::board::Database,
) -> Vec<(&nixflash::board::Board, nixflash::render::Project)> {
    db.boards()
        .flat_map(|b| {
            nixflash::render::Project::variants(b, "blinky")
                .into_iter()
                .map(move |p| (b, p))
        })
        .collect()
}

/// A random string of 24 hex digits (a password no file could hold by chance).
pub fn random_hex() -> String {
    let mut bytes = [0u8; 12];
    std::io::Read::read_exact(&mut fs::File::open("/dev/urandom").unwrap(), &mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every offset at which `needle` occurs in `haystack`.
pub fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}
