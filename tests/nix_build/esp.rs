//! ESP32 RISC-V boards built by real Nix. The ESP32-C3 Wi-Fi project (`-o wifi`: esp-radio,
//! embassy, a heap) from scratch, the one ESP project CI builds with Nix: its ELF accepted by
//! `espflash save-image`, its size report counting only loaded sections, a rebuild after an edit of
//! src/ compiling only the project's crate (riscv-rt's build script would make cargo rebuild it
//! and esp-hal: see the template), and `nix flake check`. The ESP32-C6 shares the family's flake
//! template and all of this; what is its own (the target it names, its dependencies, which
//! derivations an edit changes) is checked by evaluating its flake, and its crates are vendored for
//! real, on top of what the C3 fetched. Its firmware is compiled by tests/it/boards.rs.

use std::fs;
use std::process::Command;

use super::{
    flake_check, from_scratch_with, new_project, ready, rebuild_after_an_edit, run_ok, FromScratch,
};
use crate::common::{self, offline::NixOffline};

#[test]
fn esp32c3_builds_from_scratch_and_rebuilds_only_the_firmware() {
    let test = "esp32c3_builds_from_scratch_and_rebuilds_only_the_firmware";
    let Some(off) = ready(test, &["git", "espflash"]) else {
        return;
    };
    // The Wi-Fi project: whichever of this test and the secrets test asks first builds it.
    let built = from_scratch_with(off, "wifi", "esp32c3", &["-o", "wifi"], &["--json"]);
    assert!(!built.had_std_lock);
    let p = built.copy();
    assert!(
        !p.dir.join("nix/std-Cargo.lock").exists(),
        "an ESP build needs no std lock"
    );
    image_and_size(&built, "esp32c3");
    rebuild_after_an_edit(off, &p, &[]);
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

/// Secrets never enter the store: a fresh `nixflash new --board esp32c3 -o wifi`, built by real
/// Nix, then `nixflash image` twice (each building first) with two random passwords, one from
/// `--set`, one from the project's settings.toml. Each password is in its image once, inside the
/// settings partition; the two images differ only there; the build's store path is the same for
/// both; neither password is in a file of the build's closure (result/, the ELF), of the flake's
/// source in the store, or of the project's tracked files.
#[test]
fn esp32c3_wifi_secrets_stay_out_of_the_store_and_the_firmware() {
    let test = "esp32c3_wifi_secrets_stay_out_of_the_store_and_the_firmware";
    let Some(off) = ready(test, &["git", "espflash"]) else {
        return;
    };
    // `--json` as the from-scratch test builds it: whichever asks first builds it for both.
    let built = from_scratch_with(off, "wifi", "esp32c3", &["-o", "wifi"], &["--json"]);
    secrets_stay_out(off, &built.copy());
}

/// `nixflash image` (building first) twice in the project `p`, which has a settings partition:
/// see [`esp32c3_wifi_secrets_stay_out_of_the_store_and_the_firmware`].
fn secrets_stay_out(off: &NixOffline, p: &super::Project) {
    let settings = 0xe000..0xf000;
    let (one, two) = (common::random_hex(), common::random_hex());

    let image = |out: &str, set: &[String]| {
        let (_, err, took) = run_ok(
            off.nixflash(&p.dir)
                .args(["image", "-o", out])
                .args(set.iter().flat_map(|s| ["--set", s.as_str()]))
                .arg("--")
                .args(&off.override_args),
            &format!("nixflash image -o {out}"),
        );
        assert!(!err.contains(&one) && !err.contains(&two), "{err}");
        let store = fs::canonicalize(p.dir.join("result")).unwrap();
        (fs::read(p.dir.join(out)).unwrap(), store, took)
    };
    let (a, store_a, took) = image(
        "one.bin",
        &["ssid=TestNet".into(), format!("password={one}")],
    );
    fs::write(
        p.dir.join("settings.toml"),
        format!("ssid = \"TestNet\"\npassword = \"{two}\"\n"),
    )
    .unwrap();
    let (b, store_b, _) = image("two.bin", &[]);
    assert_eq!(store_a, store_b, "the settings changed the build");

    for (image, secret) in [(&a, &one), (&b, &two)] {
        let at = common::find_all(image, secret.as_bytes());
        assert_eq!(at.len(), 1, "the password is at {at:x?}");
        assert!(settings.contains(&at[0]), "the password is at {:#x}", at[0]);
    }
    assert_eq!(a.len(), b.len());
    let outside = (0..a.len()).find(|i| a[*i] != b[*i] && !settings.contains(i));
    assert_eq!(
        outside, None,
        "the images differ outside the settings partition"
    );

    // Nowhere in the build's closure (the ELF included), the flake's source, or git.
    let (closure, _, _) = run_ok(
        off.nix(&p.dir)
            .args(["path-info", "--recursive"])
            .arg(&store_a),
        "nix path-info of the build",
    );
    let (meta, _, _) = run_ok(
        off.nix(&p.dir)
            .args(["flake", "metadata", "--json"])
            .args(&off.override_args),
        "nix flake metadata",
    );
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    let source = meta["path"].as_str().expect("the flake's source path");
    let mut files = Vec::new();
    for path in closure.lines().chain([source]) {
        walk(std::path::Path::new(path.trim()), &mut files);
    }
    let (tracked, _, _) = run_ok(
        Command::new("git")
            .args(["ls-files", "-z"])
            .current_dir(&p.dir),
        "git ls-files",
    );
    files.extend(
        tracked
            .split('\0')
            .filter(|f| !f.is_empty())
            .map(|f| p.dir.join(f)),
    );
    assert!(files.len() > 10, "{files:?}");
    for file in &files {
        let bytes = fs::read(file).unwrap_or_default();
        for secret in [&one, &two] {
            assert!(
                common::find_all(&bytes, secret.as_bytes()).is_empty(),
                "a password is in {}",
                file.display()
            );
        }
    }
    common::measured(&format!(
        "nixflash image of {} (a build with nothing to do, then the image): {:.1} s, {} bytes",
        p.name,
        took.as_secs_f64(),
        a.len()
    ));
}

/// Every regular file at or under `path` (symbolic links not followed).
fn walk(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        for e in fs::read_dir(path).unwrap().flatten() {
            walk(&e.path(), out);
        }
    } else if meta.is_file() {
        out.push(path.to_path_buf());
    }
}
