//! A user's edits survive `init` and `new --force`: a file that is not what nixflash wrote is
//! replaced only with `--force`, and then its old text is kept beside it, under a name printed.

use std::fs;
use std::path::Path;

use predicates::prelude::*;

use crate::common;
use crate::new::{nixflash, tree};

fn read(dir: &Path, path: &str) -> String {
    fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{}/{path}: {e}", dir.display()))
}

/// Every file under `dir` with its text (.git left out).
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    tree(dir).into_iter().map(|f| (read(dir, &f), f)).collect()
}

/// Uno to Nano with .cargo/config.toml (an `[env]` entry), Ravedude.toml (a `port =` line) and
/// flake.nix edited: refused, naming them; with --force replaced, each edited one kept as
/// `<name>.orig` and the copy named; unedited files (the README) are the Nano's.
#[test]
fn a_board_switch_replaces_edited_files_only_with_force_and_keeps_copies() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args(["new", "lamp", "--board", "uno"])
        .assert()
        .success();
    let dir = tmp.path().join("lamp");
    let config = format!(
        "{}\n[env]\nMY_SETTING = \"1\"\n",
        read(&dir, ".cargo/config.toml")
    );
    fs::write(dir.join(".cargo/config.toml"), &config).unwrap();
    let ravedude = format!("{}port = \"/dev/ttyUSB3\"\n", read(&dir, "Ravedude.toml"));
    fs::write(dir.join("Ravedude.toml"), &ravedude).unwrap();
    let flake = read(&dir, "flake.nix").replace("Rust firmware for", "My firmware for");
    fs::write(dir.join("flake.nix"), &flake).unwrap();
    let before = snapshot(&dir);
    let index = common::git(&dir, &["ls-files", "-s"]);

    nixflash(&dir)
        .args(["init", "--board", "nano"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "these files were edited since nixflash wrote them:\n  flake.nix\n  \
             .cargo/config.toml\n  Ravedude.toml",
        ))
        .stderr(predicate::str::contains("--force"));
    assert_eq!(snapshot(&dir), before, "a refused switch wrote something");
    assert_eq!(common::git(&dir, &["ls-files", "-s"]), index);

    nixflash(&dir)
        .args(["init", "--board", "nano", "--force"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "replaced  .cargo/config.toml (yours is kept as .cargo/config.toml.orig)",
        ))
        .stdout(predicate::str::contains(
            "replaced  Ravedude.toml (yours is kept as Ravedude.toml.orig)",
        ))
        .stdout(predicate::str::contains(
            "replaced  flake.nix (yours is kept as flake.nix.orig)",
        ))
        .stdout(predicate::str::contains("replaced  README.md\n"));
    assert_eq!(read(&dir, ".cargo/config.toml.orig"), config);
    assert_eq!(read(&dir, "Ravedude.toml.orig"), ravedude);
    assert_eq!(read(&dir, "flake.nix.orig"), flake);
    assert!(read(&dir, "Ravedude.toml").contains("board = \"nano\""));
    assert!(!read(&dir, ".cargo/config.toml").contains("MY_SETTING"));
    // The README names the new board.
    let readme = read(&dir, "README.md");
    assert!(
        readme.contains("**Arduino Nano (old bootloader)**") && !readme.contains("Arduino Uno"),
        "{readme}"
    );
}

/// A README of the user's is kept on a switch (it is theirs), and said so.
#[test]
fn a_board_switch_keeps_a_readme_of_the_user_s() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args(["new", "lamp", "--board", "uno", "--no-git"])
        .assert()
        .success();
    let dir = tmp.path().join("lamp");
    fs::write(dir.join("README.md"), "# my lamp\n").unwrap();
    nixflash(&dir)
        .args(["init", "--board", "nano", "--no-git"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "kept      README.md: yours, not what nixflash wrote",
        ));
    assert_eq!(read(&dir, "README.md"), "# my lamp\n");
}

/// `init --force` over a package's own flake.nix and .cargo/config.toml (untracked) keeps them.
#[test]
fn init_force_over_a_package_s_own_files_keeps_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::create_dir_all(dir.join(".cargo")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"mine\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(dir.join("src/main.rs"), "// my code\n").unwrap();
    fs::write(dir.join("flake.nix"), "{ my flake }\n").unwrap();
    fs::write(dir.join(".cargo/config.toml"), "[env]\nA = \"1\"\n").unwrap();
    common::git(&dir, &["init", "-q"]);
    nixflash(&dir)
        .args(["init", "--board", "uno", "--force"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "replaced  flake.nix (yours is kept as flake.nix.orig)",
        ))
        .stdout(predicate::str::contains(
            "replaced  .cargo/config.toml (yours is kept as .cargo/config.toml.orig)",
        ));
    assert_eq!(read(&dir, "flake.nix.orig"), "{ my flake }\n");
    assert_eq!(read(&dir, ".cargo/config.toml.orig"), "[env]\nA = \"1\"\n");
    assert!(read(&dir, "flake.nix").contains("crane"));
    // The copies are the user's to look at, not the flake's: not added to git.
    let tracked = common::git(&dir, &["ls-files"]);
    assert!(!tracked.contains(".orig"), "{tracked}");
}

/// `new --force` in a folder with a src/main.rs says it replaced it, and keeps it.
#[test]
fn new_force_says_what_it_replaced_and_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("blinky");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(dir.join("src/main.rs"), "// mine\n").unwrap();
    fs::write(dir.join("notes.txt"), "mine").unwrap();
    nixflash(tmp.path())
        .args(["new", "blinky", "--board", "uno", "--force"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "  src/main.rs  (replaced: yours is kept as src/main.rs.orig)\n",
        ))
        .stdout(predicate::str::contains("  flake.nix\n"));
    assert_eq!(read(&dir, "src/main.rs.orig"), "// mine\n");
    assert_eq!(read(&dir, "notes.txt"), "mine");
    assert!(read(&dir, "src/main.rs").contains("arduino_hal"));
}

/// A project whose files git does not track (init ran with --no-git, or a git add failed): init
/// again adds them, and says so (it said "added to git" and added nothing).
#[test]
fn init_again_adds_the_files_git_does_not_track() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("porch");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"porch\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(dir.join("src/main.rs"), "// mine\n").unwrap();
    common::git(&dir, &["init", "-q"]);
    nixflash(&dir)
        .args(["init", "--board", "uno", "--no-git"])
        .assert()
        .success();
    assert_eq!(common::git(&dir, &["ls-files"]), "");
    nixflash(&dir)
        .args(["init", "--board", "uno"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Added to git what it did not track: .cargo/config.toml, .envrc, .gitignore, \
             Cargo.lock, Cargo.toml, Ravedude.toml, flake.lock, flake.nix, rust-toolchain.toml, src/main.rs",
        ));
    let tracked = common::git(&dir, &["ls-files"]);
    for f in ["flake.nix", "Cargo.toml", "src/main.rs", "Ravedude.toml"] {
        assert!(tracked.lines().any(|l| l == f), "{f} untracked: {tracked}");
    }
    // Tracked and unchanged: nothing to add, and nothing said about git.
    nixflash(&dir)
        .args(["init", "--board", "uno"])
        .assert()
        .success()
        .stdout(predicate::str::contains("git").not());
}

/// A Cargo.lock changed since nixflash wrote it (`cargo update`) is the user's too: a switch
/// replaces it only with --force, and keeps it.
#[test]
fn a_board_switch_keeps_an_updated_cargo_lock() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args(["new", "lamp", "--board", "uno", "--no-git"])
        .assert()
        .success();
    let dir = tmp.path().join("lamp");
    let lock = read(&dir, "Cargo.lock").replacen("version = ", "version =  ", 1);
    fs::write(dir.join("Cargo.lock"), &lock).unwrap();
    let before = snapshot(&dir);
    nixflash(&dir)
        .args(["init", "--board", "nano", "--no-git"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "Cargo.lock was changed since nixflash wrote it",
        ))
        .stderr(predicate::str::contains("--force"));
    assert_eq!(snapshot(&dir), before, "a refused switch wrote something");
    nixflash(&dir)
        .args(["init", "--board", "nano", "--no-git", "--force"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "replaced  Cargo.lock (yours is kept as Cargo.lock.orig)",
        ));
    assert_eq!(read(&dir, "Cargo.lock.orig"), lock);
}
