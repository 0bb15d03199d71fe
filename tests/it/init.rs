//! `nixflash init` through the real binary: a Cargo package made a nixflash project that compiles,
//! a package's own code and dependencies kept, and a project switched to another board (within a
//! family, and across families only with --force), each compared with what `nixflash new` writes
//! for that board.

use std::fs;
use std::path::Path;
use std::process::Command as Std;

use predicates::prelude::*;

use crate::common;
use crate::common::firmware::{compile_avr, compile_esp32c3};
use crate::new::{git_tracked, nixflash, tree};

/// The files `init` writes for a board of `family`, besides Cargo.toml, Cargo.lock and src/.
fn family_files(family: &str) -> Vec<&'static str> {
    let mut v = vec![
        "flake.nix",
        "flake.lock",
        ".envrc",
        "rust-toolchain.toml",
        ".cargo/config.toml",
    ];
    v.push(match family {
        "avr" => "Ravedude.toml",
        _ => "build.rs",
    });
    v
}

fn read(dir: &Path, path: &str) -> String {
    fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{}/{path}: {e}", dir.display()))
}

fn toml(dir: &Path, path: &str) -> toml::Table {
    toml::from_str(&read(dir, path)).unwrap()
}

/// `nixflash new <name> --board <board> --no-git` in a folder of its own: what a project for
/// that board is.
fn fresh(tmp: &Path, name: &str, board: &str) -> std::path::PathBuf {
    fresh_with(tmp, name, board, &[])
}

/// The same with more arguments for `new` (`--log defmt`).
fn fresh_with(tmp: &Path, name: &str, board: &str, args: &[&str]) -> std::path::PathBuf {
    let at = tmp.join(format!("fresh-{board}{}", args.join("")));
    fs::create_dir_all(&at).unwrap();
    nixflash(&at)
        .args(["new", name, "--board", board, "--no-git"])
        .args(args)
        .assert()
        .success();
    at.join(name)
}

/// What `[package.metadata.nixflash.sim]` of `dir`'s Cargo.toml expects (the flake's checks.sim),
/// if it has the table.
fn sim_expects(dir: &Path) -> Option<String> {
    let t = toml(dir, "Cargo.toml");
    let sim = t["package"]["metadata"]["nixflash"].get("sim")?;
    Some(sim["expect"].to_string())
}

/// Every board-derived file of `dir` is what `nixflash new` writes for the board (`want`), and
/// Cargo.toml says what the new project's says, apart from fields the package had before and
/// what checks.sim expects (which follows src/main.rs: see [`sim_expects`]).
fn assert_is_board_project(dir: &Path, want: &Path, family: &str) {
    for f in family_files(family).into_iter().chain(["Cargo.lock"]) {
        assert_eq!(
            read(dir, f),
            read(want, f),
            "{f} differs from a new project's"
        );
    }
    let (have, want) = (toml(dir, "Cargo.toml"), toml(want, "Cargo.toml"));
    let nixflash = |t: &toml::Table| {
        let mut nf = t["package"]["metadata"]["nixflash"].clone();
        nf.as_table_mut().unwrap().remove("sim");
        nf
    };
    assert_eq!(nixflash(&have), nixflash(&want), "the board in Cargo.toml");
    assert_eq!(have["dependencies"], want["dependencies"]);
    assert_eq!(have.get("profile"), want.get("profile"));
}

fn cargo_new(dir: &Path, name: &str) -> std::path::PathBuf {
    let out = Std::new("cargo")
        .args(["new", "--quiet", "--vcs", "git", name])
        .current_dir(dir)
        .env("CARGO_HOME", dir.join(".cargo-home"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(name)
}

/// `nixflash init --board uno` in what `cargo new` made gives a project that compiles: the HAL,
/// a Cargo.lock, the blinky in place of hello world, and .gitignore entries, all git-added.
#[test]
fn init_in_a_fresh_cargo_package_makes_a_project_that_compiles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = cargo_new(tmp.path(), "porch");
    nixflash(&dir)
        .args(["init", "--board", "uno"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Set up porch for the Arduino Uno (uno):",
        ))
        .stdout(predicate::str::contains("added     flake.nix"))
        .stdout(predicate::str::contains("added     Cargo.lock"))
        .stdout(predicate::str::contains("replaced  src/main.rs"))
        .stdout(predicate::str::contains(
            "changed   Cargo.toml: board = \"uno\"; added panic-halt, ufmt, nb, embedded-hal, \
             arduino-hal; profile settings",
        ))
        .stdout(predicate::str::contains(
            "changed   .gitignore: added /result, /.direnv, /settings.toml",
        ))
        .stdout(predicate::str::contains("To do").not());
    let want = fresh(tmp.path(), "porch", "uno");
    assert_is_board_project(&dir, &want, "avr");
    assert_eq!(read(&dir, "src/main.rs"), read(&want, "src/main.rs"));
    // The blinky's greeting, which the flake's checks.sim expects.
    assert_eq!(sim_expects(&dir), sim_expects(&want));
    assert_eq!(
        sim_expects(&dir).as_deref(),
        Some("[\"Hello from porch on the Arduino Uno!\"]")
    );
    assert_eq!(
        read(&dir, ".gitignore"),
        "/target\n/result\n/.direnv\n/settings.toml\n"
    );
    let tracked = git_tracked(&dir);
    for f in family_files("avr").into_iter().chain([
        "Cargo.lock",
        "Cargo.toml",
        "src/main.rs",
        ".gitignore",
    ]) {
        assert!(
            tracked.contains(&f.to_string()),
            "{f} not in git: {tracked:?}"
        );
    }
    // A second run has nothing to do.
    nixflash(&dir)
        .args(["init", "--board", "uno"])
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to change"));
    let test = "init_in_a_fresh_cargo_package_makes_a_project_that_compiles";
    if let Some(elf) = compile_avr(test, &dir, "porch") {
        assert!(elf.exists());
    }
}

/// A package with code and dependencies of its own: they stay, and init says what it added and
/// what is left to do.
#[test]
fn init_keeps_a_package_s_own_code_and_dependencies_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = "[package]\nname = \"mine\"\nversion = \"0.2.0\"\nedition = \"2021\"\n\n\
                    # the crates I use\n[dependencies]\nheapless = \"0.8\"\n";
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    fs::write(dir.join("src/main.rs"), "// my code\n").unwrap();
    fs::write(dir.join(".gitignore"), "/target").unwrap();
    nixflash(&dir)
        .args(["init", "--board", "uno", "--no-git"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "kept      src/main.rs: yours, not cargo's hello world",
        ))
        .stdout(predicate::str::contains("arduino-hal;"))
        .stdout(predicate::str::contains(
            "To do: your package also depends on heapless",
        ))
        .stdout(predicate::str::contains("cargo generate-lockfile"));
    assert_eq!(
        tree(&dir),
        vec![
            ".cargo/config.toml",
            ".envrc",
            ".gitignore",
            "Cargo.toml",
            "Ravedude.toml",
            "flake.lock",
            "flake.nix",
            "rust-toolchain.toml",
            "src/main.rs"
        ]
    );
    assert_eq!(read(&dir, "src/main.rs"), "// my code\n");
    assert_eq!(
        read(&dir, ".gitignore"),
        "/target\n/result\n/.direnv\n/settings.toml\n"
    );
    let have = read(&dir, "Cargo.toml");
    assert!(
        have.starts_with("[package]\nname = \"mine\"\nversion = \"0.2.0\"\nedition = \"2021\"\n")
            && have.contains("\n# the crates I use\n[dependencies]\nheapless = \"0.8\"\n"),
        "{have}"
    );
    let t = toml(&dir, "Cargo.toml");
    assert_eq!(
        t["package"]["metadata"]["nixflash"]["board"].as_str(),
        Some("uno")
    );
    assert_eq!(t["dependencies"]["heapless"].as_str(), Some("0.8"));
    let want = toml(&fresh(tmp.path(), "mine", "uno"), "Cargo.toml");
    for (dep, spec) in want["dependencies"].as_table().unwrap() {
        assert_eq!(&t["dependencies"][dep], spec, "{dep}");
    }
    assert!(read(&dir, "flake.nix").contains("name = \"mine\""));
}

#[test]
fn init_refuses_to_overwrite_files_of_the_package_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"mine\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(dir.join("src/main.rs"), "// my code\n").unwrap();
    fs::write(dir.join("flake.nix"), "{ my flake }").unwrap();
    fs::write(
        dir.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"stable\"\n",
    )
    .unwrap();
    let before: Vec<(String, String)> = tree(&dir)
        .into_iter()
        .map(|f| (read(&dir, &f), f))
        .collect();
    nixflash(&dir)
        .args(["init", "--board", "esp32c3"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "these already exist and would be overwritten:\n  flake.nix\n  rust-toolchain.toml",
        ))
        .stderr(predicate::str::contains("--force"));
    let after: Vec<(String, String)> = tree(&dir)
        .into_iter()
        .map(|f| (read(&dir, &f), f))
        .collect();
    assert_eq!(after, before, "nothing written");
    nixflash(&dir)
        .args(["init", "--board", "esp32c3", "--force", "--no-git"])
        .assert()
        .success()
        .stdout(predicate::str::contains("replaced  flake.nix"));
    assert!(read(&dir, "flake.nix").contains("crane"));
    assert!(dir.join("build.rs").exists());
}

/// Uno to Nano: every board-derived file becomes the Nano's, src/ stays as it is.
#[test]
fn init_switches_boards_within_a_family_and_leaves_src_alone() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args(["new", "lamp", "--board", "uno"])
        .assert()
        .success();
    let dir = tmp.path().join("lamp");
    common::git(
        &dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "new",
        ],
    );
    let main = format!("{}// changed by me\n", read(&dir, "src/main.rs"));
    fs::write(dir.join("src/main.rs"), &main).unwrap();
    nixflash(&dir)
        .args(["init", "-b", "nano"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Switched lamp from `uno` to the Arduino Nano (old bootloader) (nano):",
        ))
        .stdout(predicate::str::contains("replaced  Ravedude.toml"))
        .stdout(predicate::str::contains(
            "changed   Cargo.toml: board = \"nano\"; arduino-hal set to feature `arduino-nano`\n",
        ))
        .stdout(predicate::str::contains(
            "kept      src/main.rs: yours; the Arduino Nano (old bootloader) uses arduino-hal too",
        ))
        .stdout(predicate::str::contains("removed").not());
    assert_is_board_project(&dir, &fresh(tmp.path(), "lamp", "nano"), "avr");
    assert_eq!(read(&dir, "src/main.rs"), main);
    // src/main.rs, kept, greets as on the Uno: checks.sim expects what it did.
    assert_eq!(
        sim_expects(&dir).as_deref(),
        Some("[\"Hello from lamp on the Arduino Uno!\"]")
    );
    // The switch is staged; the user's edit is not.
    let status = common::git(&dir, &["status", "--porcelain"]);
    assert_eq!(
        status, "M  Cargo.toml\nM  README.md\nM  Ravedude.toml\nM  flake.nix\n M src/main.rs\n",
        "{status}"
    );
    // What build and doctor checked before a switch agrees with the new board.
    let o = nixflash(&dir).args(["doctor", "--json"]).output().unwrap();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        !j["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["what"].as_str().unwrap().contains("says board")),
        "{j}"
    );
}

/// Uno to ESP32-C3 is refused without --force and changes nothing; with --force the AVR files go
/// from disk and git, the untouched blinky becomes the C3's, and the result compiles. Back to the
/// Uno with a main.rs of the user's: it is kept, with the advice to port it.
#[test]
fn init_switches_across_families_only_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args(["new", "hop", "--board", "uno"])
        .assert()
        .success();
    let dir = tmp.path().join("hop");
    let snapshot = |dir: &Path| -> Vec<(String, String)> {
        tree(dir).into_iter().map(|f| (read(dir, &f), f)).collect()
    };
    let before = snapshot(&dir);
    nixflash(&dir)
        .args(["init", "--board", "esp32c3"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "hop is for the Arduino Uno (uno), an avr board, and the ESP32-C3-DevKitM-1 is an \
             esp-riscv board",
        ))
        .stderr(predicate::str::contains("hint: pass --force"));
    assert_eq!(snapshot(&dir), before, "a refused switch wrote something");

    nixflash(&dir)
        .args(["init", "--board", "esp32c3", "--force"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Switched hop from `uno` to the ESP32-C3-DevKitM-1 (esp32c3-devkitm-1):",
        ))
        .stdout(predicate::str::contains("removed   Ravedude.toml"))
        .stdout(predicate::str::contains("added     build.rs"))
        .stdout(predicate::str::contains("replaced  src/main.rs"))
        .stdout(predicate::str::contains("replaced  Cargo.lock"))
        .stdout(predicate::str::contains(
            "removed [package.metadata.nixflash.sim] (the previous board's)",
        ));
    assert_eq!(sim_expects(&dir), None, "the ESP32-C3 has no simulator");
    let want = fresh(tmp.path(), "hop", "esp32c3");
    assert_is_board_project(&dir, &want, "esp-riscv");
    assert_eq!(read(&dir, "src/main.rs"), read(&want, "src/main.rs"));
    assert!(!dir.join("Ravedude.toml").exists());
    let tracked = git_tracked(&dir);
    assert!(
        !tracked.contains(&"Ravedude.toml".to_string()),
        "{tracked:?}"
    );
    assert!(tracked.contains(&"build.rs".to_string()), "{tracked:?}");
    let test = "init_switches_across_families_only_with_force";
    if let Some(elf) = compile_esp32c3(test, &dir, "hop") {
        assert!(elf.exists());
    }

    // Back, with code of the user's: kept, and said what to do.
    let mine = "// my ESP code\n";
    fs::write(dir.join("src/main.rs"), mine).unwrap();
    nixflash(&dir)
        .args(["init", "--board", "uno", "--force"])
        .assert()
        .success()
        .stdout(predicate::str::contains("removed   build.rs"))
        .stdout(predicate::str::contains(
            "kept      src/main.rs: yours, written for esp-hal: port it to arduino-hal",
        ));
    assert_eq!(read(&dir, "src/main.rs"), mine);
    assert_is_board_project(&dir, &fresh(tmp.path(), "hop", "uno"), "avr");
    // Not the blinky: nothing it is known to send, so checks.sim expects nothing.
    assert_eq!(sim_expects(&dir), None);
    assert!(!dir.join("build.rs").exists());
}

/// `board = ` edited by hand: build says to run init with that board, and init makes the files
/// agree.
#[test]
fn init_repairs_a_board_edited_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args(["new", "fw", "--board", "uno", "--no-git"])
        .assert()
        .success();
    let dir = tmp.path().join("fw");
    let manifest = read(&dir, "Cargo.toml").replace("board = \"uno\"", "board = \"mega2560\"");
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    nixflash(&dir)
        .args(["init", "--board", "mega2560", "--no-git"])
        .assert()
        .success()
        .stdout(predicate::str::contains("replaced  .cargo/config.toml"));
    assert_is_board_project(&dir, &fresh(tmp.path(), "fw", "mega2560"), "avr");
    // src/main.rs is still the Uno's blinky, kept: checks.sim expects its greeting.
    assert_eq!(
        sim_expects(&dir).as_deref(),
        Some("[\"Hello from fw on the Arduino Uno!\"]")
    );
    let o = nixflash(&dir).args(["doctor", "--json"]).output().unwrap();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        !j["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["what"].as_str().unwrap().contains("says board")),
        "{j}"
    );
}

#[test]
fn init_outside_a_cargo_package_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args(["init", "--board", "uno"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no Cargo.toml"))
        .stderr(predicate::str::contains("nixflash new"));
    assert!(tree(tmp.path()).is_empty());
}

/// At a workspace root there is no package to add nixflash to: say to run it in the package.
#[test]
fn init_at_a_workspace_root_says_to_run_it_in_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("Cargo.toml"),
        "[workspace]\nmembers = [\"fw\"]\nresolver = \"2\"\n",
    )
    .unwrap();
    cargo_new(tmp.path(), "fw");
    let before = tree(tmp.path());
    nixflash(tmp.path())
        .args(["init", "--board", "uno"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("Cargo.toml has no [package] name"))
        .stderr(predicate::str::contains(
            "hint: run `nixflash init` in the package's folder, not at a workspace root",
        ));
    assert_eq!(tree(tmp.path()), before, "init wrote something");
}

/// A project made with `new -o log=defmt` keeps the choice (recorded in Cargo.toml) when `init`
/// switches it to another ESP32, every file then as `new -o log=defmt` writes it for that board,
/// the chip's features in every dependency included; `init -o log=...` (or the old `--log`)
/// changes the choice; a board whose family has no options refuses `-o`, and a switch to it
/// drops the choice, saying so.
#[test]
fn init_keeps_the_log_choice_and_changes_it_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args([
            "new",
            "probe",
            "--board",
            "esp32c3",
            "-o",
            "log=defmt",
            "--no-git",
        ])
        .assert()
        .success();
    let dir = tmp.path().join("probe");
    assert_eq!(
        toml(&dir, "Cargo.toml")["package"]["metadata"]["nixflash"]["log"].as_str(),
        Some("defmt")
    );
    nixflash(&dir)
        .args(["init", "--board", "esp32c6", "--no-git"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "changed   Cargo.toml: board = \"esp32c6-devkitc-1\"; esp-hal set to feature \
             `esp32c6`; esp-bootloader-esp-idf, esp-backtrace, esp-println as the board needs them\n",
        ))
        .stdout(predicate::str::contains("replaced  src/main.rs"));
    let want = fresh_with(tmp.path(), "probe", "esp32c6", &["-o", "log=defmt"]);
    assert_is_board_project(&dir, &want, "esp-riscv");
    assert_eq!(read(&dir, "src/main.rs"), read(&want, "src/main.rs"));

    // Back to text lines.
    nixflash(&dir)
        .args([
            "init",
            "--board",
            "esp32c6",
            "-o",
            "log=println",
            "--no-git",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "changed   Cargo.toml: removed log = \"defmt\"; esp-backtrace, esp-println as the \
             board needs them; removed defmt (the previous board's)\n",
        ));
    let want = fresh(tmp.path(), "probe", "esp32c6");
    assert_is_board_project(&dir, &want, "esp-riscv");
    assert_eq!(read(&dir, "src/main.rs"), read(&want, "src/main.rs"));

    // The Uno has no options: asked for one, init changes nothing. (`--log` is `-o log=`.)
    nixflash(&dir)
        .args(["init", "--board", "esp32c6", "--log", "defmt", "--no-git"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "--log defmt is now `-o log=defmt`",
        ));
    let before: Vec<String> = tree(&dir).iter().map(|f| read(&dir, f)).collect();
    nixflash(&dir)
        .args([
            "init",
            "--board",
            "uno",
            "--force",
            "-o",
            "log=defmt",
            "--no-git",
        ])
        .assert()
        .failure()
        .stderr("error: `-o log=defmt`: the Arduino Uno (family `avr`) has no options: drop -o\n");
    let after: Vec<String> = tree(&dir).iter().map(|f| read(&dir, f)).collect();
    assert_eq!(after, before, "init changed files when it refused");
    // Switched to it, the project drops the choice.
    nixflash(&dir)
        .args(["init", "--board", "uno", "--force", "--no-git"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "changed   Cargo.toml: board = \"uno\"; removed log = \"defmt\";",
        ))
        .stdout(predicate::str::contains(
            "Options: dropped log=defmt: the Arduino Uno (family `avr`) has no options.\n",
        ));
    let want = fresh(tmp.path(), "probe", "uno");
    assert_is_board_project(&dir, &want, "avr");
    assert_eq!(read(&dir, "src/main.rs"), read(&want, "src/main.rs"));
}
