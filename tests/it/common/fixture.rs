//! The fixture flake of tests/fixtures/project (derivations that run /bin/sh; no nixpkgs needed)
//! in a temporary folder, and helpers for the tests that run nixflash on it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;

use crate::common::{self, git};

pub fn have(tool: &str) -> bool {
    which::which(tool).is_ok()
}

/// Skips (fails in CI) the test unless `tool` is on PATH.
// Not every test binary that includes `common` uses it.
#[allow(unused_macros)]
macro_rules! require {
    ($tool:expr, $test:expr) => {
        if !$crate::common::fixture::have($tool) {
            $crate::common::skip($test, &format!("`{}` is not on PATH", $tool));
            return;
        }
    };
}

/// A copy of the fixture project (and its stand-in rust-overlay) in a temporary folder.
pub struct Fixture {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub overlay: PathBuf,
}

impl Fixture {
    /// `git_init`: make it a repository with everything committed.
    pub fn new(git_init: bool) -> Fixture {
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

    pub fn nixflash(&self, sub: &str) -> Command {
        let mut c = Command::cargo_bin("nixflash").unwrap();
        c.current_dir(self.dir.join(sub));
        c
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.dir.join(rel)).unwrap()
    }

    pub fn tracked(&self) -> Vec<String> {
        git(&self.dir, &["ls-files"])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(mut c: Command) -> Output {
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
pub fn nix_calls(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("Running `nix "))
        .collect()
}

/// Section sizes by name, from `avr-size -A`.
pub fn avr_size(elf: &Path) -> std::collections::HashMap<String, u64> {
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
#[allow(unused_imports)]
pub(crate) use require;
