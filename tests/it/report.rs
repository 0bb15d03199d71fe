//! What `build` reports: the known-failure table against captured logs, and the size report
//! against real ELFs (avr-size's figures, ESP32 loaded sections only).

use std::fs;
use std::path::{Path, PathBuf};

use nixflash::board::Database;

use crate::common;
use crate::common::fixture::{avr_size, have};
use crate::common::fixtures;

#[test]
fn every_diagnosis_matches_its_captured_logs_and_only_those() {
    let dir = fixtures().join("logs");
    let table = nixflash::diagnose::table();
    let mut logs: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    // Logs in which a second, related diagnosis is expected too.
    let also = [("git-dependency-hash", "git-dependency-fetch")];
    // A log belongs to the entry whose id its name is, or starts with followed by `-`.
    let owner = |log: &Path| -> Option<&str> {
        let stem = log.file_stem()?.to_str()?;
        table
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| stem == *id || stem.starts_with(&format!("{id}-")))
            .max_by_key(|id| id.len())
    };
    for entry in table {
        assert!(
            logs.iter().any(|l| owner(l) == Some(entry.id.as_str())),
            "no captured log for `{}`",
            entry.id
        );
    }
    for log in &logs {
        let id = owner(log).unwrap_or_else(|| panic!("{} names no diagnosis", log.display()));
        let text = fs::read_to_string(log).unwrap();
        // Captured with the nix arguments its entry needs (capture.sh).
        let args = table.iter().find(|e| e.id == id).unwrap().args.join(" ");
        let found = nixflash::diagnose::diagnose(
            &text,
            &[("git_root", "/r"), ("board", "uno"), ("nix_args", &args)],
        );
        let mut ids: Vec<&str> = found.iter().map(|d| d.id.as_str()).collect();
        ids.sort();
        let mut want = vec![id];
        want.extend(also.iter().filter(|(a, _)| *a == id).map(|(_, b)| *b));
        want.sort();
        assert_eq!(ids, want, "{}", log.display());
        for d in &found {
            assert!(
                d.missing.is_empty(),
                "{}: no value for {:?}",
                log.display(),
                d.missing
            );
        }
    }
}

#[test]
fn diagnoses_fill_in_what_the_logs_say() {
    let logs = fixtures().join("logs");
    let d = |name: &str| {
        let text = fs::read_to_string(logs.join(name)).unwrap();
        nixflash::diagnose::diagnose(
            &text,
            &[("git_root", "/src/blinky"), ("board", "esp32c3-devkitm-1")],
        )
    };
    assert_eq!(
        d("untracked-file.log")[0].fix[0],
        "git -C /src/blinky add --intent-to-add -- firmware.elf"
    );
    assert!(d("unknown-target.log")[0]
        .problem
        .contains("`riscv32imc-unknown-none-elfx`"));
    assert!(d("toolchain-not-available.log")[0]
        .problem
        .contains("(2099-01-01)"));
    assert!(d("toolchain-not-available.log")[0].fix[0].starts_with("nixflash update rust-overlay"));
    assert_eq!(
        d("git-dependency-unlocked.log")[0].fix[0],
        "cargo update -p arduino-hal   (then git add Cargo.lock)"
    );
    let m = &d("hash-mismatch.log")[0];
    assert_eq!(
        m.fix[0],
        "replace sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= with sha256-M6zoNlbZ5P36SF4/a3pI/WmjRyN6cBWLDdn24YE44eg= in flake.nix"
    );
    assert!(d("git-dependency-hash.log")[0].problem.contains(
        "git+https://github.com/rahix/avr-hal?rev=1111111111111111111111111111111111111111#1111111111111111111111111111111111111111"
    ));
    // Toolchains before compiler_builtins moved into the library fetch it from crates.io, and
    // cargo's message then names it (the message format of std-lock-vendor.log, other crate).
    let old = "blinky> error: no matching package named `compiler_builtins` found";
    assert_eq!(nixflash::diagnose::diagnose(old, &[])[0].id, "std-lock");
    // Without a failed fetch, crane's warning alone is no diagnosis (the build fetches anyway).
    let warn = "evaluation warning: No output hash provided for git+https://x/y?rev=1#1\nerror: builder failed";
    assert!(nixflash::diagnose::diagnose(warn, &[]).is_empty());
}

#[test]
fn esp32c3_sizes_count_only_loaded_sections() {
    // An esp-hal 1.2 blinky for the ESP32-C3 (nixflash's template), stripped. Its sections
    // (readelf -S): .trap 0x604 and .rwtext 0x4f0 (IRAM code, loaded from flash), .data 0x2d4,
    // .bss 0x1b8, .flash.appdesc 0x100, .rodata 0x21d4, .text 0x5baa; not counted: the NOLOAD
    // .rwdata_dummy 0xaf4, .rotext_dummy 0x10000 and .stack 0x4d480.
    let db = Database::builtin().unwrap();
    let board = db.get("esp32c3").unwrap();
    let r =
        nixflash::firmware::size::analyze_file(&fixtures().join("elf/esp32c3-blinky.elf"), board)
            .unwrap();
    assert_eq!(
        r.flash.used,
        0x604 + 0x4f0 + 0x2d4 + 0x100 + 0x21d4 + 0x5baa
    );
    assert_eq!(r.ram.used, 0x604 + 0x4f0 + 0x2d4 + 0x1b8);
    assert_eq!(r.flash.total, board.memory.flash);
    assert_eq!(r.ram.total, board.memory.ram);
    assert!(r
        .sections
        .iter()
        .all(|s| !s.name.contains("dummy") && s.name != ".stack"));
    assert_eq!(
        r.to_string(),
        "flash 35910 B / 4194304 B (0.9 %), RAM 3968 B / 393216 B (1.0 %)"
    );
}

#[test]
fn avr_sizes_agree_with_avr_size() {
    if !have("avr-size") {
        common::skip("avr_sizes_agree_with_avr_size", "`avr-size` is not on PATH");
        return;
    }
    let elf = fixtures().join("project/firmware.elf");
    let db = Database::builtin().unwrap();
    let r = nixflash::firmware::size::analyze_file(&elf, db.get("uno").unwrap()).unwrap();
    let s = avr_size(&elf);
    assert_eq!(r.flash.used, s[".text"] + s[".data"]);
    assert_eq!(r.ram.used, s[".data"] + s[".bss"]);
    // The fixture's C source: 23 bytes of .data (24 with avr-gcc's padding), 100 of .bss.
    assert!(s[".data"] >= 23 && s[".bss"] == 100);
}
