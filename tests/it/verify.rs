//! `nixflash verify` against real Nix, with the fixture flake of tests/fixtures/project: a rebuild
//! that is identical, one that writes random bytes into the ELF's `.data` (named as the section
//! that differs), and `--against` a hash, a `sha256sum` file and an ELF.
//!
//! Tests that need `nix` print `SKIPPED: ...` when it is missing, and fail in CI.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use object::{Object, ObjectSection};

use crate::common::fixture::{require, run, Fixture, Output};

/// `sha256sum`'s hash of `file`.
fn sha256sum(file: &Path) -> String {
    let out = StdCommand::new("sha256sum").arg(file).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_string()
}

fn verify(f: &Fixture, args: &[&str]) -> (Output, serde_json::Value) {
    let mut c = f.nixflash("");
    // Nix (single-user, as here) builds in $TMPDIR/nix-build-<name>.drv-<n>, taking the lowest
    // free <n>: every test's fixture is called `fixture`, so with one /tmp a test running beside
    // this one could be given the folder this one's verify had just removed. A TMPDIR of the
    // fixture's own keeps each test's build folders its own.
    let tmp = f.dir.parent().unwrap().join("nix-tmp");
    fs::create_dir_all(&tmp).unwrap();
    c.env("TMPDIR", &tmp);
    c.arg("verify").arg("--json").args(args);
    let o = run(c);
    let j = serde_json::from_str(&o.stdout).expect("verify --json prints JSON");
    (o, j)
}

/// The names of the sections a comparison says are not the same.
fn differing(comparison: &serde_json::Value) -> Vec<&str> {
    comparison["sections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] != "same")
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

#[test]
fn verify_says_a_reproducible_firmware_is_identical() {
    require!("nix", "verify_says_a_reproducible_firmware_is_identical");
    let f = Fixture::new(true);
    let (o, j) = verify(&f, &[]);
    assert_eq!(o.code, 0);
    assert_eq!((&j["ok"], &j["identical"]), (&true.into(), &true.into()));
    assert_eq!(j["rebuild"]["identical"], true);
    assert!(j["rebuild"]["comparison"].is_null());
    assert!(j["against"].is_null());
    let elf = PathBuf::from(j["elf"].as_str().unwrap());
    let hash = sha256sum(&elf);
    assert_eq!(j["sha256"]["elf"], hash.as_str());
    assert_eq!(hash, sha256sum(&f.dir.join("firmware.elf")));
    // Said as it is: the firmware derivation rebuilt, once, by `nix build --rebuild`.
    assert!(o.stderr.contains(
        "Verified fixture: the rebuild is identical (rebuilt the firmware derivation; its \
         dependencies' build was reused)"
    ));
    assert!(o.stderr.contains(&format!("SHA-256 {hash}  fixture.elf")));
    assert_eq!(
        o.stderr.matches("fixture> installing the firmware").count(),
        2
    );
}

#[test]
fn an_unreproducible_firmware_fails_verify_and_names_the_section() {
    require!(
        "nix",
        "an_unreproducible_firmware_fails_verify_and_names_the_section"
    );
    let f = Fixture::new(true);
    // The fixture's build writes 8 random bytes into .data.
    let elf = fs::read(f.dir.join("firmware.elf")).unwrap();
    let file = object::File::parse(&*elf).unwrap();
    let (at, size) = file.section_by_name(".data").unwrap().file_range().unwrap();
    assert!(size >= 8);
    fs::write(f.dir.join("random-at"), at.to_string()).unwrap();

    let (o, j) = verify(&f, &[]);
    assert_eq!(o.code, 1);
    assert_eq!((&j["ok"], &j["identical"]), (&false.into(), &false.into()));
    assert_eq!(j["kind"], "not-identical");
    let r = &j["rebuild"];
    assert_eq!(r["identical"], false);
    assert_eq!(differing(&r["comparison"]), [".data"]);
    let data = &r["comparison"]["sections"][0];
    let bytes = data["differing_bytes"].as_u64().unwrap();
    // Random bytes may equal the old ones, one in 256.
    assert!((1..=8).contains(&bytes), "{data}");
    assert_eq!(r["comparison"]["differing_bytes"], bytes);
    // Nix's .check output was compared, then deleted, and its build folder removed.
    let check = PathBuf::from(r["check"].as_str().unwrap());
    assert!(check.to_string_lossy().ends_with(".check"));
    assert!(!check.exists());
    assert_eq!(r["kept"], false);
    let build_dir = PathBuf::from(r["build_dir"].as_str().unwrap());
    assert!(!build_dir.exists());
    assert!(r["other_files"].as_array().unwrap().is_empty());
    assert_ne!(r["sha256"], j["sha256"]["elf"]);
    // For people: the section and its bytes, why it happens and how to look closer.
    assert!(o
        .stderr
        .contains(&format!(".data  {bytes} of {size} bytes differ")));
    assert!(o
        .stderr
        .contains("error: the rebuild of fixture is not identical to the build"));
    assert!(o.stderr.contains("hint: the usual causes: a build script"));
    assert!(o.stderr.contains("nix build .#default --rebuild"));

    // --keep keeps the rebuild, for a closer look.
    let (o, j) = verify(&f, &["--keep"]);
    assert_eq!(o.code, 1);
    let check = PathBuf::from(j["rebuild"]["check"].as_str().unwrap());
    assert_eq!(j["rebuild"]["kept"], true);
    assert!(check.join("bin/fixture.elf").is_file());
    let sum = sha256sum(&check.join("bin/fixture.elf"));
    assert_eq!(j["rebuild"]["sha256"], sum.as_str());
    let deleted = StdCommand::new("nix")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "store",
            "delete",
        ])
        .arg(&check)
        .output()
        .unwrap();
    assert!(deleted.status.success());
}

#[test]
fn a_rebuild_whose_elf_is_identical_but_not_its_output_fails_and_names_the_file() {
    require!(
        "nix",
        "a_rebuild_whose_elf_is_identical_but_not_its_output_fails_and_names_the_file"
    );
    let f = Fixture::new(true);
    fs::write(f.dir.join("random-doc"), "").unwrap();
    let (o, j) = verify(&f, &[]);
    assert_eq!(o.code, 1);
    assert_eq!(j["kind"], "not-identical");
    let r = &j["rebuild"];
    assert_eq!(r["identical"], false);
    assert_eq!(r["comparison"]["identical"], true);
    assert!(differing(&r["comparison"]).is_empty());
    assert_eq!(r["other_files"], serde_json::json!(["share/random.txt"]));
    assert_eq!(r["sha256"], j["sha256"]["elf"]);
    assert!(o.stderr.contains("fixture.elf is identical, byte for byte"));
    assert!(o
        .stderr
        .contains("other files of the output differ too: share/random.txt"));
}

#[test]
fn verify_against_a_hash_a_sums_file_and_an_elf() {
    require!("nix", "verify_against_a_hash_a_sums_file_and_an_elf");
    let f = Fixture::new(true);
    let fixture_elf = f.dir.join("firmware.elf");
    let hash = sha256sum(&fixture_elf);

    // The right hash: no rebuild without --rebuild.
    let (o, j) = verify(&f, &["--against", &hash.to_uppercase()]);
    assert_eq!(o.code, 0);
    assert!(j["rebuild"].is_null());
    assert_eq!(j["against"]["kind"], "hash");
    assert_eq!(j["against"]["identical"], true);
    assert_eq!(j["against"]["hashes"][0]["of"], "elf");
    assert_eq!(
        o.stderr.matches("fixture> installing the firmware").count(),
        1
    );
    assert!(o
        .stderr
        .contains("Verified fixture.elf matches the hash given"));

    // A wrong one: what was expected, and what was built.
    let wrong = "0".repeat(64);
    let (o, j) = verify(&f, &["--against", &wrong]);
    assert_eq!(o.code, 1);
    assert_eq!(j["kind"], "not-identical");
    assert_eq!(j["against"]["hashes"][0]["expected"], wrong.as_str());
    assert_eq!(j["against"]["hashes"][0]["got"], hash.as_str());
    assert!(o.stderr.contains(&format!("expected {wrong}")));
    assert!(o.stderr.contains(&format!("got      {hash}")));

    // A sha256sum file: the line that names fixture.elf; and the rebuild too when asked.
    let sums = format!("{wrong}  other.elf\n{hash}  result/bin/fixture.elf\n");
    fs::write(f.dir.join("SHA256SUMS"), sums).unwrap();
    let (o, j) = verify(&f, &["--against", "SHA256SUMS", "--rebuild"]);
    assert_eq!(o.code, 0);
    assert_eq!(j["against"]["kind"], "sha256sum");
    assert_eq!(j["against"]["hashes"][0]["name"], "fixture.elf");
    assert_eq!(j["rebuild"]["identical"], true);
    fs::write(f.dir.join("SHA256SUMS"), format!("{wrong}  fixture.elf\n")).unwrap();
    let (o, _) = verify(&f, &["--against", "SHA256SUMS"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("is not the one"), "{}", o.stderr);

    // An ELF: the same bytes, then two bytes of .text changed.
    let (o, j) = verify(&f, &["--against", fixture_elf.to_str().unwrap()]);
    assert_eq!(o.code, 0);
    assert_eq!(j["against"]["kind"], "elf");
    assert_eq!(j["against"]["comparison"]["identical"], true);
    let mut other = fs::read(&fixture_elf).unwrap();
    let file = object::File::parse(&*other).unwrap();
    let (at, _) = file.section_by_name(".text").unwrap().file_range().unwrap();
    let at = at as usize;
    other[at + 4] ^= 0xff;
    other[at + 5] ^= 0xff;
    let changed = f.dir.join("other.elf");
    fs::write(&changed, &other).unwrap();
    let (o, j) = verify(&f, &["--against", "other.elf"]);
    assert_eq!(o.code, 1);
    assert_eq!(differing(&j["against"]["comparison"]), [".text"]);
    assert!(o.stderr.contains(".text  2 of "), "{}", o.stderr);
    assert!(o.stderr.contains("fixture.elf differs from"));
}

#[test]
fn a_bad_against_is_refused_before_any_build() {
    let f = Fixture::new(true);
    for (arg, says) in [
        ("abc123", "`abc123` has 6 hex digits, and a SHA-256 has 64"),
        (
            "no-such-file",
            "is neither a SHA-256 (64 hex digits) nor a file",
        ),
    ] {
        let (o, j) = verify(&f, &["--against", arg]);
        assert_eq!(o.code, 1);
        assert_eq!(j["kind"], "usage");
        assert!(j["error"].as_str().unwrap().contains(says), "{j}");
        assert!(o.stderr.contains("hint: pass --against a SHA-256"));
        assert!(!o.stderr.contains("Building"), "refused before the build");
    }
    // --rebuild is for --against.
    let mut c = f.nixflash("");
    c.args(["verify", "--rebuild"]);
    let o = run(c);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("--against"), "{}", o.stderr);
}
