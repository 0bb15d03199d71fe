//! `nixflash update` with real Nix.

use std::fs;

use super::{new_project, ready, run_ok};

/// `nixflash update` moves pins on purpose and says old -> new; the std lock follows.
#[test]
fn update_moves_the_pins_and_says_what_moved() {
    let test = "update_moves_the_pins_and_says_what_moved";
    let Some(off) = ready(test, &["git"]) else {
        return;
    };

    let p = new_project(off, "upd", "uno");
    let before = fs::read_to_string(p.dir.join("flake.lock")).unwrap();
    // nix-offline's inputs, this time written into flake.lock (no --no-write-lock-file).
    let args: Vec<&String> = off
        .override_args
        .iter()
        .filter(|a| *a != "--no-write-lock-file")
        .collect();
    let crane = args[args.iter().position(|a| *a == "crane").unwrap() + 1].clone();
    let (_, log, _) = run_ok(
        off.nixflash(&p.dir)
            .args(["update", "crane", "--"])
            .args(&args),
        "nixflash update crane",
    );
    let after = fs::read_to_string(p.dir.join("flake.lock")).unwrap();
    assert_ne!(before, after, "flake.lock did not change:\n{log}");
    assert!(
        log.contains(&format!("Moved crane 2c71e19 (2026-08-03) → {crane}")),
        "update did not say how crane moved:\n{log}"
    );
    for input in [
        "nixpkgs 104240a (2026-08-03) → path:",
        "rust-overlay fd2ebb9 (2026-08-22) → path:",
    ] {
        assert!(log.contains(input), "update did not say `{input}`:\n{log}");
    }
    assert!(
        log.contains("Updated nix/std-Cargo.lock"),
        "update did not make the std lock:\n{log}"
    );
    assert!(p.dir.join("nix/std-Cargo.lock").is_file());
}
