//! Failures as a script sees them: every command with `--json` answers a failure on stdout too,
//! `{"ok": false, "kind", "error", "diagnosis", "hints"}`, and exits 1; the kinds are the ones
//! README.md lists. (The tests of each command check its wording for people.)

use std::fs;
use std::path::Path;

use crate::common::{self, fixtures};

/// `nixflash <args>` in `dir`: its exit code and the JSON on its stdout.
fn json_failure(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let o = common::nixflash()
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join(".cfg"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let j = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "nixflash {args:?}: no JSON on stdout ({e}): {:?}\n{stderr}",
            String::from_utf8_lossy(&o.stdout)
        )
    });
    // People still get the error on stderr.
    assert!(stderr.contains("error: "), "nixflash {args:?}: {stderr}");
    (o.status.code(), j)
}

#[test]
fn json_failures_say_their_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    fs::create_dir_all(&pkg).unwrap();
    fs::write(
        pkg.join("Cargo.toml"),
        "[package]\nname = \"pkg\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    let broken = tmp.path().join("broken");
    fs::create_dir_all(&broken).unwrap();
    fs::write(broken.join("Cargo.toml"), "[package\n").unwrap();
    let avr = fixtures().join("project/firmware.elf");
    let avr = avr.to_str().unwrap();
    let here = tmp.path();
    let cases: [(&Path, &[&str], &str); 9] = [
        (here, &["boards", "nosuch", "--json"], "board-unknown"),
        (here, &["boards", "show", "unoo", "--json"], "board-unknown"),
        (here, &["build", "--json"], "not-a-project"),
        (&pkg, &["build", "--json"], "board-needed"),
        (&broken, &["build", "--json"], "project-file"),
        (
            here,
            &["sim", "--json", "-b", "uno", "--elf", "/no/fw.elf"],
            "firmware-missing",
        ),
        (
            here,
            &[
                "sim",
                "--json",
                "-b",
                "uno",
                "--elf",
                avr,
                "--duration",
                "0",
            ],
            "usage",
        ),
        (
            here,
            &["sim", "--json", "-b", "uno", "--elf", avr, "--expect", ""],
            "usage",
        ),
        (
            here,
            &["sim", "--json", "-b", "unoo", "--elf", avr],
            "board-unknown",
        ),
    ];
    for (dir, args, kind) in cases {
        let (code, j) = json_failure(dir, args);
        assert_eq!(code, Some(1), "nixflash {args:?}: {j}");
        assert_eq!(j["ok"], false, "nixflash {args:?}: {j}");
        assert_eq!(j["kind"], kind, "nixflash {args:?}: {j}");
        assert!(j["error"].as_str().is_some_and(|e| !e.is_empty()), "{j}");
        assert!(j["diagnosis"].is_array(), "{j}");
        let hints = j["hints"].as_array().unwrap();
        assert!(
            !hints.is_empty(),
            "nixflash {args:?}: a failure with a kind says what to do: {j}"
        );
    }
}
