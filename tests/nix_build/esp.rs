//! ESP32 RISC-V boards built by real Nix. The ESP32-C3 from scratch: its ELF accepted by
//! `espflash save-image`, its size report counting only loaded sections, a rebuild after an edit of
//! src/ compiling only the project's crate (riscv-rt's build script would make cargo rebuild it
//! and esp-hal: see the template), and `nix flake check`. The ESP32-C6 shares the family's flake
//! template and all of this; what is its own (the target it names, its dependencies, which
//! derivations an edit changes) is checked by evaluating its flake, and its crates are vendored for
//! real, on top of what the C3 fetched. Its firmware is compiled by tests/it/boards.rs.

use std::fs;
use std::process::Command;

use super::{
    flake_check, from_scratch, new_project, ready, rebuild_after_an_edit, run_ok, FromScratch,
};
use crate::common::{self, offline::NixOffline};

#[test]
fn esp32c3_builds_from_scratch_and_rebuilds_only_the_firmware() {
    let test = "esp32c3_builds_from_scratch_and_rebuilds_only_the_firmware";
    let Some(off) = ready(test, &["git", "espflash"]) else {
        return;
    };
    let built = from_scratch(off, "esp32c3", "esp32c3", &["--json"]);
    assert!(!built.had_std_lock);
    let p = built.copy();
    assert!(
        !p.dir.join("nix/std-Cargo.lock").exists(),
        "an ESP build needs no std lock"
    );
    image_and_size(&built, "esp32c3");
    rebuild_after_an_edit(off, &p);
    flake_check(off, &p, false);
}

/// `espflash save-image` takes the built ELF, and the size report (in `nixflash build --json`)
/// counts the loaded sections.
fn image_and_size(built: &FromScratch, chip: &str) {
    let p = built.copy();
    let elf = built.elf();
    let json = &built.out;

    // espflash turns it into an app image.
    let image = p.dir.join("app.bin");
    let (_, err, _) = run_ok(
        Command::new("espflash")
            .args(["save-image", "--chip", chip])
            .arg(&elf)
            .arg(&image),
        "espflash save-image",
    );
    let bytes = fs::read(&image).unwrap();
    assert_eq!(bytes.first(), Some(&0xE9), "not an ESP app image:\n{err}");

    // The size report counts the sections that are loaded, read independently here: every
    // counted section occupies memory (SHF_ALLOC), none is debug data or a stack reservation,
    // and flash is the bytes of the allocated sections that have contents.
    let j: serde_json::Value = serde_json::from_str(json).unwrap();
    let counted: Vec<&str> = j["size"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let data = fs::read(&elf).unwrap();
    let file = object::File::parse(&*data).unwrap();
    use object::{Object, ObjectSection, SectionFlags, SectionKind};
    let mut loaded = 0u64;
    for s in file.sections() {
        let SectionFlags::Elf { sh_flags } = s.flags() else {
            continue;
        };
        let alloc = sh_flags & u64::from(object::elf::SHF_ALLOC) != 0;
        let name = s.name().unwrap();
        if counted.contains(&name) {
            assert!(alloc, "{name} is counted but not loaded");
        }
        if alloc && s.kind() != SectionKind::UninitializedData {
            loaded += s.size();
        }
    }
    for name in &counted {
        assert!(
            !name.starts_with(".debug") && !name.starts_with(".stack") && !name.contains("dummy"),
            "{name} is counted"
        );
    }
    let flash = j["size"]["flash"]["used"].as_u64().unwrap();
    assert_eq!(flash, loaded, "flash is not the loaded sections' bytes");
    assert!(
        flash * 2 < data.len() as u64,
        "flash {flash} B is not much less than the ELF's {} B (debug info counted?)",
        data.len()
    );
    common::measured(&format!(
        "{} is {flash} B of flash, {} B of RAM; app image {} B",
        p.name,
        j["size"]["ram"]["used"],
        bytes.len()
    ));
}

/// The ESP32-C6's flake, evaluated: the firmware and its dependencies are built for the C6's
/// target with a toolchain that has that target's core, its crates vendor for real, and an edit of
/// src/main.rs changes the firmware's derivation and nothing under it.
#[test]
fn esp32c6_flake_builds_for_its_target_and_an_edit_changes_only_the_firmware() {
    let test = "esp32c6_flake_builds_for_its_target_and_an_edit_changes_only_the_firmware";
    let Some(off) = ready(test, &["git"]) else {
        return;
    };
    let target = "riscv32imac-unknown-none-elf";
    let p = new_project(off, "esp32c6", "esp32c6");
    let before = derivations(off, &p);
    let firmware = format!("{}-0.1.0", p.name);
    let deps = format!("{}-deps-0.1.0", p.name);
    for name in [&firmware, &deps] {
        let d = before
            .get(name)
            .unwrap_or_else(|| panic!("no derivation {name} in {:?}", before.keys()));
        assert_eq!(
            d.env.get("CARGO_BUILD_TARGET").map(String::as_str),
            Some(target),
            "{name} does not build for the C6's target"
        );
    }
    // nix-offline's stand-in for rust-overlay's rust-std component of the target.
    let std = format!("rust-std-{target}-host");
    assert!(
        before.contains_key(&std),
        "the toolchain has no core for {target}: {:?}",
        before.keys()
    );
    // The C6's crates, fetched from crates.io and vendored (riscv-rt's build script patched).
    let vendor = &before
        .get("vendor-cargo-deps")
        .unwrap_or_else(|| panic!("no vendor-cargo-deps in {:?}", before.keys()))
        .path;
    run_ok(
        off.nix(&p.dir)
            .args(["build", "--no-link"])
            .arg(format!("{vendor}^out")),
        "building the C6's vendored crates",
    );

    let main = p.dir.join("src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    fs::write(
        &main,
        source.replacen("Hello from ", "Hello again from ", 1),
    )
    .unwrap();
    let after = derivations(off, &p);
    assert_ne!(
        before[&firmware].path, after[&firmware].path,
        "an edit of src/main.rs left the firmware's derivation as it was"
    );
    for name in [&deps, &std, &"vendor-cargo-deps".to_string()] {
        assert_eq!(
            before[name].path, after[name].path,
            "an edit of src/main.rs changed {name}, which the firmware is built on"
        );
    }
}

/// A derivation of the firmware's closure: its store path and environment.
struct Derivation {
    path: String,
    env: std::collections::HashMap<String, String>,
}

/// Every derivation the firmware (`packages.<system>.default`) needs, by name (evaluated, not
/// built: `nix derivation show --recursive`).
fn derivations(
    off: &NixOffline,
    p: &super::Project,
) -> std::collections::HashMap<String, Derivation> {
    let (drv, _, _) = run_ok(
        off.nix(&p.dir)
            .args(["eval", "--raw", ".#packages.x86_64-linux.default.drvPath"])
            .args(&off.override_args),
        "nix eval of the firmware's derivation",
    );
    let (json, _, _) = run_ok(
        off.nix(&p.dir)
            .args(["derivation", "show", "--recursive"])
            .arg(drv.trim()),
        "nix derivation show",
    );
    let all: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
    all.into_iter()
        .map(|(path, d)| {
            let env = d["env"]
                .as_object()
                .map(|e| {
                    e.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let name = d["name"].as_str().unwrap_or("").to_string();
            (name, Derivation { path, env })
        })
        .collect()
}
