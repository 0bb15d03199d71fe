//! Helpers shared by the integration tests (each test file that needs them says `mod common;`).
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's tests/fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
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
