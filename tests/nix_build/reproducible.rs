//! The same firmware from every checkout: the Uno project copied into two folders that name two
//! different users builds to the same ELF, with Nix (the same derivation: the folder is no input
//! of the build) and with cargo under the remappings of the flake's dev shell (the shell's
//! RUSTC_WRAPPER, with a cargo home of each user's own), whose code and data are Nix's too.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{from_scratch_with, nixflash_build, ready, run_ok, FromScratch, Project};
use crate::common::process::{run_bounded, text};
use crate::common::{self, offline::NixOffline};

#[test]
fn uno_two_checkouts_give_the_same_firmware_with_nix_and_in_the_dev_shell() {
    let test = "uno_two_checkouts_give_the_same_firmware_with_nix_and_in_the_dev_shell";
    let Some(off) = ready(test, &["git"]) else {
        return;
    };
    if let Some(why) = common::offline::firmware_env()
        .err()
        .or_else(|| common::offline::avr_hal_git().err())
    {
        return common::skip(test, &why);
    }
    let built = super::uno::uno(off);
    let tmp = tempfile::Builder::new()
        .prefix("nixflash-checkouts-")
        .tempdir()
        .unwrap();
    let alice = checkout(&built, &tmp.path().join("home/alice/src"));
    let bob = checkout(&built, &tmp.path().join("users/bob/work/firmware"));

    // Nix: the same derivation from both folders, so the same firmware (nothing is built again).
    let drv = |p: &Project| {
        run_ok(
            off.nix(&p.dir)
                .args(["eval", "--raw", ".#default.drvPath"])
                .args(&off.override_args),
            "nix eval of the firmware's derivation",
        )
        .0
    };
    assert_eq!(
        drv(&alice),
        drv(&bob),
        "the checkout's folder is an input of the firmware's derivation"
    );
    let nix_elf = |p: &Project| {
        nixflash_build(off, p, &[]);
        fs::read(p.dir.join(format!("result/bin/{}.elf", p.name))).unwrap()
    };
    let from_nix = nix_elf(&alice);
    assert_eq!(from_nix, nix_elf(&bob), "Nix built two different ELFs");

    // cargo with the dev shell's remappings, each user with a cargo home of their own.
    let wrapper = shell_wrapper(off, &alice);
    let a = cargo_build(&alice, &wrapper, &tmp.path().join("home/alice/.cargo"));
    let b = cargo_build(&bob, &wrapper, &tmp.path().join("users/bob/.cargo"));
    for (elf, who) in [(&a, "alice"), (&b, "bob")] {
        let hits = common::find_all(elf, who.as_bytes());
        assert!(
            hits.is_empty(),
            "the ELF built in {who}'s checkout names a path of it ({} times)",
            hits.len()
        );
    }
    assert!(
        a == b,
        "cargo in the dev shell built different ELFs in two checkouts: {}",
        differing_sections(&a, &b)
    );
    // The same compiler as nix-offline's toolchain: what goes to the board is Nix's too; only
    // the debug info may name things otherwise (a git dependency without its version).
    let loaded = differing_sections(&a, &from_nix);
    assert!(
        loaded
            .split(", ")
            .all(|s| s.starts_with(".debug_") || s == "no section differs"),
        "cargo in the dev shell and Nix built different code or data: {loaded}"
    );
    let same_as_nix = if a == from_nix {
        "the same bytes as Nix's".to_string()
    } else {
        format!("not Nix's bytes ({})", differing_sections(&a, &from_nix))
    };
    common::measured(&format!(
        "{}: Nix built the same derivation from two checkouts; cargo under the dev shell's \
         remappings built the same {} B ELF in both ({same_as_nix})",
        built.name,
        a.len()
    ));
}

/// A copy of the built project at `<parent>/<name>`, its `result` link left out.
fn checkout(built: &FromScratch, parent: &Path) -> Project {
    fs::create_dir_all(parent).unwrap();
    let dir = parent.join(&built.name);
    let o = run_bounded(
        Command::new("cp").arg("-a").arg(&built.dir).arg(&dir),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "cp -a: {:?}", text(&o));
    let _ = fs::remove_file(dir.join("result"));
    Project {
        _tmp: None,
        dir,
        name: built.name.clone(),
    }
}

/// The dev shell's RUSTC_WRAPPER, built.
fn shell_wrapper(off: &NixOffline, p: &Project) -> PathBuf {
    let (out, _, _) = run_ok(
        off.nix(&p.dir)
            .args(["build", "--no-link", "--print-out-paths"])
            .arg(".#devShells.x86_64-linux.default.RUSTC_WRAPPER")
            .args(&off.override_args),
        "nix build of the dev shell's RUSTC_WRAPPER",
    );
    let path = PathBuf::from(out.trim());
    assert!(
        path.is_file(),
        "{} is not the wrapper script",
        path.display()
    );
    path
}

/// `cargo build --release --locked` of the project with the machine's firmware compiler, the
/// dev shell's wrapper and `cargo_home`; the ELF's bytes.
fn cargo_build(p: &Project, wrapper: &Path, cargo_home: &Path) -> Vec<u8> {
    fs::create_dir_all(cargo_home).unwrap();
    let env = common::offline::firmware_env().unwrap();
    let gitconfig = cargo_home.join("gitconfig");
    let mirror = common::offline::avr_hal_git().unwrap();
    fs::write(
        &gitconfig,
        format!(
            "[url \"{}\"]\n\tinsteadOf = https://github.com/rahix/avr-hal\n\
             [url \"{0}\"]\n\tinsteadOf = https://github.com/Rahix/avr-hal\n",
            mirror.display()
        ),
    )
    .unwrap();
    let script = format!(
        ". '{}' && exec cargo build --release --locked",
        env.display()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script])
        .current_dir(&p.dir)
        .env("CARGO_HOME", cargo_home)
        .env("RUSTC_WRAPPER", wrapper)
        .env("GIT_CONFIG_GLOBAL", &gitconfig)
        .env("CARGO_NET_GIT_FETCH_WITH_CLI", "true")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let o = run_bounded(&mut cmd, Duration::from_secs(1200));
    assert!(
        o.status.success(),
        "cargo build in {}: {:?}",
        p.dir.display(),
        text(&o).1
    );
    fs::read(
        p.dir
            .join(format!("target/avr-none/release/{}.elf", p.name)),
    )
    .unwrap()
}

/// The sections two ELFs differ in, as `name (N bytes differ)`.
fn differing_sections(a: &[u8], b: &[u8]) -> String {
    use object::{Object, ObjectSection};
    let (fa, fb) = (
        object::File::parse(a).unwrap(),
        object::File::parse(b).unwrap(),
    );
    let mut out = Vec::new();
    for s in fa.sections() {
        let name = s.name().unwrap_or("?");
        let da = s.data().unwrap_or(&[]);
        match fb.section_by_name(name).and_then(|t| t.data().ok()) {
            None => out.push(format!("{name} (only in one)")),
            Some(db) if db != da => {
                let n =
                    da.iter().zip(db).filter(|(x, y)| x != y).count() + da.len().abs_diff(db.len());
                out.push(format!("{name} ({n} bytes differ)"));
            }
            Some(_) => {}
        }
    }
    if out.is_empty() {
        "no section differs".into()
    } else {
        out.join(", ")
    }
}

#[test]
fn uno_verify_says_identical_and_the_hashes_are_the_files() {
    let test = "uno_verify_says_identical_and_the_hashes_are_the_files";
    if let Some(off) = ready(test, &["git", "sha256sum"]) {
        verify_says_identical(off, &super::uno::uno(off));
    }
}

#[test]
fn esp32c3_verify_says_identical_and_the_hashes_are_the_files() {
    let test = "esp32c3_verify_says_identical_and_the_hashes_are_the_files";
    if let Some(off) = ready(test, &["git", "sha256sum", "espflash"]) {
        // The Wi-Fi project esp.rs and paths.rs build, with the same arguments.
        let built = from_scratch_with(off, "wifi", "esp32c3", &["-o", "wifi"], &["--json"]);
        verify_says_identical(off, &built);
    }
}

#[test]
fn pico_verify_says_identical_and_the_hashes_are_the_files() {
    let test = "pico_verify_says_identical_and_the_hashes_are_the_files";
    if let Some(off) = ready(test, &["git", "sha256sum", "flip-link"]) {
        // The embassy project rp2.rs builds.
        let built = from_scratch_with(off, "pico", "pico", &["-o", "async=embassy"], &[]);
        verify_says_identical(off, &built);
    }
}

/// On a copy of `built`: `build --json` gives the ELF's SHA-256 as `sha256sum` prints it, and a
/// flash image's; `verify` rebuilds the firmware and finds it identical, with the same hash;
/// `verify --against <that hash>` agrees without a rebuild, a wrong hash fails.
fn verify_says_identical(off: &NixOffline, built: &FromScratch) {
    let p = built.copy();
    let (json, _, _) = nixflash_build(off, &p, &["--json"]);
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    let elf = p.dir.join(format!("result/bin/{}.elf", p.name));
    let sum = sha256sum(&elf);
    assert_eq!(j["sha256"]["elf"], sum.as_str(), "{json}");
    let image = j["sha256"]["image"].as_str().unwrap_or_default();
    assert_eq!(image.len(), 64, "no flash image hash: {json}");

    let (json, log, took) = run_ok(
        off.nixflash(&p.dir)
            .args(["verify", "--json", "--"])
            .args(&off.override_args),
        &format!("nixflash verify of {}", p.name),
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["identical"], true, "{json}\n{log}");
    assert_eq!(v["rebuild"]["identical"], true, "{json}");
    assert_eq!(v["sha256"]["elf"], sum.as_str(), "{json}");
    assert!(
        log.contains("the rebuild is identical"),
        "verify did not say the rebuild is identical:\n{log}"
    );

    let against = |hash: &str| {
        let mut cmd = off.nixflash(&p.dir);
        cmd.args(["verify", "--against", hash, "--"])
            .args(&off.override_args);
        run_bounded(&mut cmd, Duration::from_secs(600))
    };
    assert!(against(&sum).status.success(), "--against its own hash");
    let wrong = format!(
        "{}{}",
        &sum[..63],
        if sum.ends_with('0') { '1' } else { '0' }
    );
    let o = against(&wrong);
    assert_eq!(
        o.status.code(),
        Some(1),
        "--against a wrong hash: {:?}",
        text(&o)
    );
    common::measured(&format!(
        "{}: verify rebuilt the firmware in {:.1} s and found it identical (ELF {sum}, flash \
         image {image})",
        p.name,
        took.as_secs_f64()
    ));
}

/// `sha256sum <file>`'s hash.
fn sha256sum(file: &Path) -> String {
    let o = run_bounded(Command::new("sha256sum").arg(file), Duration::from_secs(60));
    assert!(o.status.success(), "sha256sum: {:?}", text(&o));
    text(&o).0.split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_firmware_with_random_bytes_makes_verify_fail_naming_the_section() {
    let test = "a_firmware_with_random_bytes_makes_verify_fail_naming_the_section";
    let Some(off) = ready(test, &["git", "flip-link"]) else {
        return;
    };
    // The Black Pill project cortex_m.rs builds; its build script now also writes 16 random bytes
    // that src/main.rs keeps in the firmware (crane's dependency build has a dummy build script:
    // only the firmware is built again).
    let p = super::from_scratch(off, "blackpill", "blackpill-f411ce", &[]).copy();
    let build_rs = p.dir.join("build.rs");
    let script = fs::read_to_string(&build_rs).unwrap();
    let end = script.rfind('}').unwrap();
    let random = "    let mut nonce = [0u8; 16];\n    \
        std::io::Read::read_exact(&mut std::fs::File::open(\"/dev/urandom\").unwrap(), &mut nonce)\n        \
        .unwrap();\n    std::fs::write(out.join(\"nonce.bin\"), nonce).unwrap();\n";
    fs::write(&build_rs, format!("{}{random}}}\n", &script[..end])).unwrap();
    let main = p.dir.join("src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    let edited = source.replacen(
        "fn main() -> ! {\n",
        "fn main() -> ! {\n    core::hint::black_box(NONCE);\n",
        1,
    );
    assert_ne!(edited, source, "src/main.rs has no `fn main() -> ! {{`");
    let edited = format!(
        "{edited}\nstatic NONCE: &[u8; 16] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/nonce.bin\"));\n"
    );
    fs::write(&main, edited).unwrap();
    super::git_add(&p, ".");
    nixflash_build(off, &p, &[]);

    let mut cmd = off.nixflash(&p.dir);
    cmd.args(["verify", "--"]).args(&off.override_args);
    let o = run_bounded(&mut cmd, Duration::from_secs(1200));
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "verify of a firmware with random bytes did not exit 1:\n{out}\n{err}"
    );
    let said = format!("{out}\n{err}");
    let line = said
        .lines()
        .find(|l| l.contains(".rodata"))
        .unwrap_or_else(|| panic!("verify did not name .rodata:\n{said}"));
    common::measured(&format!(
        "verify of a firmware with random bytes: {}",
        line.trim()
    ));
}
