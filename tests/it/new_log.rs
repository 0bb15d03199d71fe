//! `nixflash new -o log=<choice>`: a choice the board's family offers (boards/families/*.toml
//! `[options.log]`), refused with what there is for boards whose family has none.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn nixflash(cwd: &Path) -> Command {
    let mut c = Command::cargo_bin("nixflash").unwrap();
    c.current_dir(cwd)
        .env("XDG_CONFIG_HOME", cwd.join(".no-user-config"));
    c
}

/// The files of `nixflash new blinky --board esp32c3 -o log=defmt`, for snapshots (Cargo.lock is
/// cargo's data, checked by compiling the project in tests/it/firmware.rs). The files that do
/// not depend on the choice must be the default project's.
#[test]
fn snapshot_esp_riscv_esp32c3_defmt() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, log) in [("plain", "println"), ("defmt", "defmt")] {
        nixflash(tmp.path())
            .args([
                "new", name, "--board", "esp32c3", "--no-git", "--name", "blinky",
            ])
            .args(["-o", &format!("log={log}")])
            .assert()
            .success();
    }
    let stamp = format!("nixflash {}", env!("CARGO_PKG_VERSION"));
    let differ = [
        ".cargo/config.toml",
        "Cargo.toml",
        "README.md",
        "build.rs",
        "flake.nix",
        "src/main.rs",
    ];
    for f in [
        ".cargo/config.toml",
        ".envrc",
        ".github/workflows/firmware.yml",
        ".gitignore",
        "Cargo.toml",
        "README.md",
        "build.rs",
        "flake.lock",
        "flake.nix",
        "rust-toolchain.toml",
        "src/main.rs",
    ] {
        let read = |p: &str| std::fs::read_to_string(tmp.path().join(p).join(f)).unwrap();
        let (plain, defmt) = (read("plain"), read("defmt"));
        if differ.contains(&f) {
            let name = format!("esp32c3-devkitm-1-defmt__{}", f.replace(['/', '.'], "_"));
            insta::assert_snapshot!(name, defmt.replace(&stamp, "nixflash <version>"));
            assert_ne!(plain, defmt, "{f}");
        } else {
            assert_eq!(plain, defmt, "{f}");
        }
    }
    // `-o log=println` is the default project, Cargo.lock included.
    let default = tmp.path().join("default");
    nixflash(tmp.path())
        .args([
            "new", "default", "--board", "esp32c3", "--no-git", "--name", "blinky",
        ])
        .assert()
        .success();
    for f in ["Cargo.lock", "src/main.rs", "Cargo.toml", "flake.nix"] {
        assert_eq!(
            std::fs::read_to_string(default.join(f)).unwrap(),
            std::fs::read_to_string(tmp.path().join("plain").join(f)).unwrap(),
            "{f}"
        );
    }
    let lock = std::fs::read_to_string(tmp.path().join("defmt/Cargo.lock")).unwrap();
    assert!(lock.contains("name = \"defmt\"\nversion = \"1."), "{lock}");
}

#[test]
fn log_is_refused_where_the_family_has_no_choice_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    // Every board whose family offers --log (the ESP32 boards).
    let db = nixflash::board::Database::builtin().unwrap();
    let offering: Vec<&str> = db
        .boards()
        .filter(|b| b.family().options.contains_key("log"))
        .map(|b| b.id.as_str())
        .collect();
    assert!(offering.contains(&"esp32c3-devkitm-1"), "{offering:?}");
    nixflash(tmp.path())
        .args(["new", "blinky", "--board", "uno", "-o", "log=defmt"])
        .assert()
        .failure()
        .stderr("error: `-o log=defmt`: the Arduino Uno (family `avr`) has no options: drop -o\n");
    // The old `--log` is `-o log=`, and says so.
    nixflash(tmp.path())
        .args(["new", "blinky", "--board", "esp32c3", "--log", "rtt"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--log rtt is now `-o log=rtt`"))
        .stderr(predicate::str::contains(
            "error: `-o log=rtt` is not a choice for the ESP32-C3-DevKitM-1: log (how the \
             firmware logs) is one of defmt, println (default println)\n",
        ));
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".no-user-config")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // `boards show` says which choices a board has.
    nixflash(tmp.path())
        .args(["boards", "show", "esp32c6"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "    log         how the firmware logs: defmt, println (default)\n",
        ));
}
