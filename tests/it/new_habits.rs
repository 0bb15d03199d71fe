//! `nixflash new` as cargo's `new` and `init` behave: `new .` takes the folder's name, missing
//! folders above the project are created, and paths are printed as a shell takes them.

use std::fs;

use predicates::prelude::*;

use crate::common;
use crate::new::{git_tracked, nixflash, tree};

/// `new .` in an empty folder, and in one that only has a git repository, names the package
/// after the folder (as `cargo init` does), writes in place and says no `cd`; a folder with
/// files of the user's needs --force, as for any path.
#[test]
fn new_dot_takes_the_folder_s_name() {
    let tmp = tempfile::tempdir().unwrap();
    let lamp = tmp.path().join("lamp");
    fs::create_dir(&lamp).unwrap();
    nixflash(&lamp)
        .args(["new", ".", "--board", "uno"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Created lamp for the Arduino Uno (uno) in .\n",
        ))
        .stdout(predicate::str::contains("Next:\n  nixflash build\n"))
        .stdout(predicate::str::contains("cd ").not());
    assert!(fs::read_to_string(lamp.join("Cargo.toml"))
        .unwrap()
        .contains("name = \"lamp\""));
    assert!(git_tracked(&lamp).contains(&"flake.nix".to_string()));

    // A folder with only a git repository (`git init`, a clone of an empty one): its repository
    // is used.
    let porch = tmp.path().join("porch");
    fs::create_dir(&porch).unwrap();
    common::git(&porch, &["init", "-q"]);
    nixflash(&porch)
        .args(["new", ".", "--board", "uno"])
        .assert()
        .success();
    assert!(git_tracked(&porch).contains(&"src/main.rs".to_string()));

    let notes = tmp.path().join("notes");
    fs::create_dir(&notes).unwrap();
    fs::write(notes.join("todo.txt"), "mine").unwrap();
    nixflash(&notes)
        .args(["new", ".", "--board", "uno"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is not empty"));
    assert_eq!(tree(&notes), vec!["todo.txt"]);
}

/// `new a/b/blinky` creates a/ and a/b/, as `cargo new` does; a path with a space is printed
/// quoted, ready to copy.
#[test]
fn new_creates_missing_folders_and_quotes_paths() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args(["new", "a/b/blinky", "--board", "uno"])
        .assert()
        .success()
        .stdout(predicate::str::contains("  cd a/b/blinky\n"));
    assert!(tmp.path().join("a/b/blinky/flake.nix").exists());
    nixflash(tmp.path())
        .args(["new", "my projects/lamp", "--board", "uno"])
        .assert()
        .success()
        .stdout(predicate::str::contains("in 'my projects/lamp'\n"))
        .stdout(predicate::str::contains("  cd 'my projects/lamp'\n"));
}
