//! Project options (`-o <name>=<choice>` on `new` and `init`, boards/families/*.toml
//! `[options.<name>]`) through the real binary: every combination the data allows renders for
//! every board; bad input is one line, exit non-zero, nothing written; requirements are turned on
//! and said; `init --board` keeps what the new board offers and says what it drops; `boards
//! show`, `--help` and shell completions list the options.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use predicates::prelude::*;
use serde_json::Value;

use crate::common;
use crate::new::{nixflash, tree};

/// The contents of every file under `dir`, for "nothing was written".
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .map(|f| {
            let bytes = fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

/// `boards --json`: every board with the options it offers.
fn boards_json(cwd: &Path) -> Vec<Value> {
    let out = nixflash(cwd).args(["boards", "--json"]).output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Every combination of a board's options (from its `boards --json` entry) where each choice's
/// `requires` holds.
fn combinations(options: &serde_json::Map<String, Value>) -> Vec<BTreeMap<String, String>> {
    let mut all = vec![BTreeMap::new()];
    for (name, o) in options {
        let choices: Vec<String> = o["choices"].as_object().unwrap().keys().cloned().collect();
        all = all
            .into_iter()
            .flat_map(|base| {
                choices.iter().map(move |c| {
                    let mut next = base.clone();
                    next.insert(name.clone(), c.clone());
                    next
                })
            })
            .collect();
    }
    all.retain(|combo| {
        combo.iter().all(|(n, c)| {
            options[n]["choices"][c]
                .get("requires")
                .and_then(Value::as_object)
                .is_none_or(|r| {
                    r.iter()
                        .all(|(req, want)| combo.get(req).map(String::as_str) == want.as_str())
                })
        })
    });
    all
}

/// Every combination of options that `boards --json` says a board allows is made by `new -o
/// ...` (each option given): the project records exactly its non-default choices, a choice's
/// `files` are there exactly when it is chosen, and nothing is turned on that was asked for.
#[test]
fn every_option_combination_the_data_allows_renders_for_every_board() {
    let tmp = tempfile::tempdir().unwrap();
    let mut made = 0;
    for board in boards_json(tmp.path()) {
        let id = board["id"].as_str().unwrap();
        let options = board["options"].as_object().unwrap();
        let combos = combinations(options);
        assert!(!combos.is_empty(), "{id}");
        for (i, combo) in combos.iter().enumerate() {
            let args: Vec<String> = combo.iter().map(|(n, c)| format!("{n}={c}")).collect();
            let dir = tmp.path().join(format!("{id}-{i}"));
            let mut cmd = nixflash(tmp.path());
            cmd.args(["new", &dir.display().to_string(), "--board", id, "--no-git"]);
            for a in &args {
                cmd.args(["-o", a]);
            }
            let out = cmd.output().unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert!(out.status.success(), "{id} {args:?}: {stderr}");
            assert!(!stdout.contains("turned on"), "{id} {args:?}: {stdout}");
            let manifest: toml::Table =
                toml::from_str(&fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
            let recorded = manifest["package"]["metadata"]["nixflash"]
                .as_table()
                .unwrap();
            for (n, c) in combo {
                let default = options[n]["default"].as_str().unwrap();
                let have = recorded.get(n).and_then(|v| v.as_str());
                let want = (c != default).then_some(c.as_str());
                assert_eq!(have, want, "{id} {args:?}: {n} in Cargo.toml");
                for (other, choice) in options[n]["choices"].as_object().unwrap() {
                    for f in choice
                        .get("files")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let f = f.as_str().unwrap();
                        assert_eq!(
                            dir.join(f).exists(),
                            combo[n] == *other,
                            "{id} {args:?}: {f} (listed by {n}={other})"
                        );
                    }
                }
            }
            assert!(dir.join("Cargo.lock").exists(), "{id} {args:?}");
            made += 1;
        }
    }
    assert!(made > 20, "{made} projects made");
}

/// Each bad `-o` is one line on stderr, exit 1, and nothing written: for `new` (no folder) and
/// for `init` (the project's files as they were).
#[test]
fn bad_options_are_one_line_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let db = nixflash::board::Database::builtin().unwrap();
    let with_wifi: Vec<&str> = db
        .boards()
        .filter(|b| nixflash::options::offered(b).any(|(n, _)| n == "wifi"))
        .map(|b| b.id.as_str())
        .collect();
    assert!(with_wifi.contains(&"xiao-esp32c6") && !with_wifi.contains(&"esp32h2-devkitm-1"));
    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        (
            "esp32c3",
            vec!["-o", "bluetooth"],
            "`-o bluetooth`: the ESP32-C3-DevKitM-1 has no option `bluetooth`; its options are \
             alloc, async, log, wifi"
                .into(),
        ),
        (
            "esp32c3",
            vec!["-o", "log=rtt"],
            "`-o log=rtt` is not a choice for the ESP32-C3-DevKitM-1: log (how the firmware \
             logs) is one of defmt, println (default println)"
                .into(),
        ),
        (
            "esp32c3",
            vec!["-o", "log"],
            "`-o log` needs a choice: -o log=defmt or -o log=println".into(),
        ),
        (
            "esp32h2",
            vec!["-o", "wifi"],
            format!(
                "`-o wifi`: the ESP32-H2-DevKitM-1 (chip esp32h2) has no wifi (a Wi-Fi station): \
                 only esp32c2, esp32c3, esp32c6 chips do; the boards that have it: {}",
                with_wifi.join(", ")
            ),
        ),
        (
            "esp32c3",
            vec!["-o", "wifi", "-o", "async=none"],
            "`-o async=none` contradicts `-o wifi`: wifi=on needs async=embassy, not async=none"
                .into(),
        ),
        (
            "esp32c6",
            vec!["--option", "alloc=off", "--option", "wifi=on"],
            "`-o alloc=off` contradicts `-o wifi=on`: wifi=on needs alloc=on, not alloc=off".into(),
        ),
        (
            "esp32c3",
            vec!["-o", "log=defmt", "-o", "log=println"],
            "`-o log=defmt` and `-o log=println` contradict each other: choose one".into(),
        ),
        (
            "uno",
            vec!["-o", "log=defmt"],
            "`-o log=defmt`: the Arduino Uno (family `avr`) has no options: drop -o".into(),
        ),
        (
            "pico",
            vec!["-o", "wifi"],
            format!(
                "`-o wifi`: the Raspberry Pi Pico has no option `wifi`; its options are async; \
                 the boards that have it: {}",
                with_wifi.join(", ")
            ),
        ),
    ];
    for (board, args, message) in &cases {
        nixflash(tmp.path())
            .args(["new", "p", "--board", board])
            .args(args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(format!("error: {message}\n"));
        assert!(!tmp.path().join("p").exists(), "new {board} {args:?} wrote");
    }
    // init, in projects for those boards (and a switch to one).
    let projects: BTreeMap<&str, std::path::PathBuf> =
        ["esp32c3", "esp32h2", "esp32c6", "uno", "pico"]
            .into_iter()
            .map(|b| {
                nixflash(tmp.path())
                    .args(["new", &format!("for-{b}"), "--board", b, "--no-git"])
                    .assert()
                    .success();
                (b, tmp.path().join(format!("for-{b}")))
            })
            .collect();
    for (board, args, message) in &cases {
        let dir = &projects[board];
        let before = snapshot(dir);
        nixflash(dir)
            .args(["init", "--board", board, "--no-git"])
            .args(args)
            .assert()
            .code(1)
            .stdout("")
            .stderr(format!("error: {message}\n"));
        assert_eq!(snapshot(dir), before, "init {board} {args:?} wrote");
    }
    let dir = &projects["esp32c3"];
    let before = snapshot(dir);
    nixflash(dir)
        .args([
            "init",
            "--board",
            "uno",
            "--force",
            "--no-git",
            "-o",
            "async=embassy",
        ])
        .assert()
        .code(1)
        .stderr(
            "error: `-o async=embassy`: the Arduino Uno (family `avr`) has no options: drop -o\n",
        );
    assert_eq!(snapshot(dir), before, "init --board uno wrote");
}

/// `-o wifi` turns on what Wi-Fi needs and says so; the project records the choices; `init
/// --board` keeps them on another chip with Wi-Fi and drops Wi-Fi, saying why, on the ESP32-H2.
#[test]
fn wifi_turns_on_what_it_needs_and_init_keeps_or_drops_it() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args([
            "new", "station", "--board", "esp32c3", "-o", "wifi", "--no-git",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Options: wifi=on needs alloc=on and async=embassy: turned on.\n",
        ));
    let dir = tmp.path().join("station");
    let recorded = |dir: &Path| -> String {
        let t: toml::Table =
            toml::from_str(&fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
        let mut s: Vec<String> = t["package"]["metadata"]["nixflash"]
            .as_table()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "board")
            .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
            .collect();
        s.sort();
        s.join(" ")
    };
    assert_eq!(recorded(&dir), "alloc=on async=embassy wifi=on");
    nixflash(&dir)
        .args(["init", "--board", "esp32c6", "--no-git"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Options:").not());
    assert_eq!(recorded(&dir), "alloc=on async=embassy wifi=on");
    nixflash(&dir)
        .args(["init", "--board", "esp32h2", "--no-git"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Options: dropped wifi=on: the ESP32-H2-DevKitM-1 (chip esp32h2) has no wifi (a \
             Wi-Fi station): only esp32c2, esp32c3, esp32c6 chips do.\n",
        ))
        .stdout(predicate::str::contains("removed wifi = \"on\""));
    assert_eq!(recorded(&dir), "alloc=on async=embassy");
    // What new writes for the H2 with those choices.
    nixflash(tmp.path())
        .args([
            "new", "h2", "--board", "esp32h2", "--no-git", "--name", "station",
        ])
        .args(["-o", "async=embassy", "-o", "alloc=on"])
        .assert()
        .success();
    for f in ["Cargo.toml", "flake.nix", ".cargo/config.toml", "build.rs"] {
        assert_eq!(
            fs::read_to_string(dir.join(f)).unwrap(),
            fs::read_to_string(tmp.path().join("h2").join(f)).unwrap(),
            "{f}"
        );
    }
}

/// `-o async=embassy` on a Pico is recorded and kept by a switch to the Pico 2; a switch to an
/// AVR board drops it, saying that the family has no options.
#[test]
fn async_on_a_pico_is_kept_by_init_and_dropped_for_avr() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args([
            "new",
            "tick",
            "--board",
            "pico",
            "-o",
            "async=embassy",
            "--no-git",
        ])
        .assert()
        .success();
    let dir = tmp.path().join("tick");
    let cargo = || fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(cargo().contains("\nasync = \"embassy\"\n"), "{}", cargo());
    nixflash(&dir)
        .args(["init", "--board", "pico2", "--no-git"])
        .assert()
        .success();
    assert!(cargo().contains("\nasync = \"embassy\"\n"), "{}", cargo());
    nixflash(&dir)
        .args(["init", "--board", "uno", "--force", "--no-git"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Options: dropped async=embassy: the Arduino Uno (family `avr`) has no options.\n",
        ));
    assert!(!cargo().contains("async"), "{}", cargo());
}

/// `boards show` lists a board's options with their choices, defaults and needs (text and
/// JSON); an AVR board says it has none, a chip without Wi-Fi does not list it.
#[test]
fn boards_show_lists_a_board_s_options() {
    let tmp = tempfile::tempdir().unwrap();
    nixflash(tmp.path())
        .args(["boards", "show", "esp32c3"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "  options       -o <name>=<choice> on `nixflash new` and `init`:\n\
             \x20   alloc       a heap: off (default), on\n\
             \x20   async       how the program runs: embassy, none (default)\n\
             \x20   log         how the firmware logs: defmt, println (default)\n\
             \x20   wifi        a Wi-Fi station: off (default), on; on needs alloc=on and \
             async=embassy; only on esp32c2, esp32c3, esp32c6 chips\n",
        ));
    nixflash(tmp.path())
        .args(["boards", "show", "esp32h2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("    async ").and(predicate::str::contains("wifi").not()));
    nixflash(tmp.path())
        .args(["boards", "show", "uno"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "  options       none (the family's templates offer no choices)\n",
        ));
    let json = |id: &str| -> Value {
        let out = nixflash(tmp.path())
            .args(["boards", "show", id, "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let c3 = json("esp32c3");
    assert_eq!(c3["options"]["wifi"]["default"], "off");
    assert_eq!(
        c3["options"]["wifi"]["choices"]["on"]["requires"],
        serde_json::json!({ "async": "embassy", "alloc": "on" })
    );
    assert_eq!(c3["options"]["log"]["choices"]["defmt"]["lock"], "defmt");
    assert!(json("esp32h2")["options"].get("wifi").is_none());
    assert_eq!(json("pico")["options"]["async"]["default"], "none");
    assert_eq!(json("uno")["options"], serde_json::json!({}));
}

/// `new --help` and `init --help` list the options of every family; shell completion offers
/// `name=choice` for -o.
#[test]
fn help_and_completions_list_the_options() {
    let tmp = tempfile::tempdir().unwrap();
    for cmd in ["new", "init"] {
        let out = nixflash(tmp.path()).args([cmd, "--help"]).output().unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        for want in [
            "-o, --option <NAME=CHOICE>",
            "AVR (Arduino) (`avr`): no options",
            "  wifi    a Wi-Fi station: off (default), on; on needs alloc=on and async=embassy; \
             only on",
            "Raspberry Pi RP2 (RP2040, RP2350) (`rp2`):\n            async   how the program \
             runs: embassy, none (default)",
        ] {
            assert!(help.contains(want), "{cmd} --help lacks {want:?}:\n{help}");
        }
        assert!(!help.contains("--log"), "{cmd} --help shows --log");
    }
    if !common::on_path("bash") {
        return common::skip("help_and_completions_list_the_options", "no bash on PATH");
    }
    let script = format!(
        "source <('{bin}' completions bash)\nCOMP_WORDS=(nixflash new x -o wi)\nCOMP_CWORD=5\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         _nixflash nixflash wi -o\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin = env!("CARGO_BIN_EXE_nixflash")
    );
    let o = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "wifi=off\nwifi=on\n");
    let fish = nixflash(tmp.path())
        .args(["completions", "fish"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&fish.stdout).contains("async=embassy"));
}

/// What else `[package.metadata.nixflash]` holds (`port`) is no option: `init` keeps it, and
/// says only of a recorded option that it drops it (an AVR board has none).
#[test]
fn init_drops_only_options_and_keeps_the_project_s_other_settings() {
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
        .success()
        .stdout(predicate::str::contains("Options:").not());
    let dir = tmp.path().join("probe");
    let cargo = || fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        cargo().replace(
            "log = \"defmt\"\n",
            "log = \"defmt\"\nport = \"/dev/ttyUSB9\"\n",
        ),
    )
    .unwrap();
    nixflash(&dir)
        .args(["init", "--board", "esp32c6", "--no-git"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Options:").not());
    assert!(
        cargo().contains("log = \"defmt\"\nport = \"/dev/ttyUSB9\"\n"),
        "{}",
        cargo()
    );
    nixflash(&dir)
        .args(["init", "--board", "uno", "--force", "--no-git"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "\nOptions: dropped log=defmt: the Arduino Uno (family `avr`) has no options.\nNext:",
        ));
    assert!(cargo().contains("port = \"/dev/ttyUSB9\"\n"), "{}", cargo());
    assert!(!cargo().contains("log ="), "{}", cargo());
}
