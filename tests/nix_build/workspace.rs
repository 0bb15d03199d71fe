//! A project that is a member of a cargo workspace, with the flake at the workspace root: what a
//! user gets who moves a `nixflash new` project into a workspace. `nixflash build`, `flash` and
//! `sim` run in the member's folder, and find the flake (and the flasher and simulator it pins)
//! at the root, as `nix::flake_dir` does.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::uno::{flash_simulated_uno, uno};
use super::{built_derivations, ready, run_ok, FromScratch};
use crate::common::process::{children_cpu, run_bounded, text};
use crate::common::sim::{ravedude_missing, sim_missing};
use crate::common::{self, git, on_path, skip};

#[test]
fn a_workspace_member_with_the_flake_at_the_root_builds_flashes_and_simulates() {
    let test = "a_workspace_member_with_the_flake_at_the_root_builds_flashes_and_simulates";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(test, &why);
    }
    if !on_path("simavr") {
        return skip(test, "simavr is not on PATH (apt install simavr)");
    }
    let Some(off) = ready(test, &["git"]) else {
        return;
    };
    // The Uno project of this run (built from scratch once), moved into a workspace: the same
    // name and lock, so Nix has its crates, toolchain and std lock already.
    let built = uno(off);
    let started = std::time::Instant::now();
    let cpu = children_cpu();
    let tmp = tempfile::Builder::new()
        .prefix("nixflash-nix-build-")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("workspace");
    let member = workspace_of(&built, &root);
    // PATH with nix and git only: no ravedude, no simavr, no avrdude. The flasher and the
    // simulator can only come from the flake at the workspace root.
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    for tool in ["nix", "git"] {
        std::os::unix::fs::symlink(which::which(tool).unwrap(), bin.join(tool)).unwrap();
    }
    let path = OsString::from(&bin);
    for tool in ["ravedude", "avrdude", "simavr"] {
        assert!(
            which::which_in(tool, Some(&path), "/").is_err(),
            "{tool} is on a PATH meant to have nix and git only"
        );
    }

    // `nixflash build` in the member: the flake at the root builds the workspace, the link is
    // at the root, and the ELF is the member's.
    let (_, log, _) = run_ok(
        off.nixflash(&member)
            .env("PATH", &path)
            .arg("build")
            .arg("--")
            .args(&off.override_args),
        "nixflash build in the workspace member",
    );
    let elf = root.join(format!("result/bin/{}.elf", built.name));
    assert!(elf.is_file(), "no {}:\n{log}", elf.display());
    let shown = log
        .lines()
        .map(str::trim_start)
        .find(|l| l.starts_with("Built "))
        .unwrap_or_else(|| panic!("no Built line:\n{log}"));
    assert!(
        shown.starts_with("Built /nix/store/")
            && shown.contains(&format!("/bin/{}.elf", built.name)),
        "{shown}"
    );
    assert!(
        !log.contains("Updated nix/std-Cargo.lock"),
        "the std lock moved with the flake, and is the toolchain's:\n{log}"
    );
    common::measured(&format!(
        "the workspace of {} built in {:.1} s ({:.1} s of CPU; derivations: {:?})",
        built.name,
        started.elapsed().as_secs_f64(),
        (children_cpu() - cpu).as_secs_f64(),
        built_derivations(&log)
            .iter()
            .map(|d| d.split_once('-').map_or(d.as_str(), |(_, n)| n))
            .collect::<Vec<_>>()
    ));

    // `nixflash flash`: ravedude from the flake's `flasher`, uploading into a simulated Uno.
    let log = flash_simulated_uno(off, &member, &built.name, Some(&path));
    let flasher = log
        .lines()
        .map(str::trim_start)
        .find(|l| l.starts_with("Flasher "))
        .unwrap_or_else(|| panic!("no Flasher line:\n{log}"));
    assert!(
        flasher.starts_with("Flasher ravedude ")
            && flasher.contains("/nix/store/")
            && flasher.contains(&format!("-{}-flasher/bin/ravedude", built.name)),
        "the flasher is not the flake's:\n{log}"
    );

    // `nixflash sim --no-build`: the firmware from ./result at the workspace root (where
    // `build` keeps it), simavr from the flake's `simulator`.
    let greeting = format!("Hello from {} on the Arduino Uno!", built.name);
    let o = run_bounded(
        off.nixflash(&member)
            .env("PATH", &path)
            .args([
                "sim",
                "--no-build",
                "--duration",
                "2",
                "--expect",
                &greeting,
                "--",
            ])
            .args(&off.override_args),
        Duration::from_secs(600),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "nixflash sim:\n{out}\n{err}");
    assert!(out.contains(&greeting), "{out}");
    let simulator = err
        .lines()
        .map(str::trim_start)
        .find(|l| l.starts_with("Simulator "))
        .unwrap_or_else(|| panic!("no Simulator line:\n{err}"));
    assert!(
        simulator.starts_with("Simulator simavr ") && simulator.contains("/nix/store/"),
        "the simulator is not the flake's:\n{err}"
    );
    common::measured(&format!(
        "the workspace member of {} built, flashed and simulated in {:.1} s ({:.1} s of CPU), \
         after the Uno's build from scratch",
        built.name,
        started.elapsed().as_secs_f64(),
        (children_cpu() - cpu).as_secs_f64()
    ));
}

/// `built` moved into a cargo workspace at `root` as its member `<name>/`, the way a user does
/// it: what the flake and cargo read at the top goes to the root (the flake and its lock, the
/// toolchain pin, .cargo/config.toml, Cargo.lock, nix/std-Cargo.lock, .gitignore), the member's
/// profiles go to the root's Cargo.toml (cargo ignores a member's), the flake reads the member's
/// Ravedude.toml, and the workspace is one git repository. Returns the member's folder.
fn workspace_of(built: &FromScratch, root: &Path) -> PathBuf {
    let member = root.join(&built.name);
    fs::create_dir_all(root).unwrap();
    let o = run_bounded(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&built.dir)
            .arg(&member),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "cp -a: {:?}", text(&o));
    fs::remove_dir_all(member.join(".git")).unwrap();
    fs::remove_file(member.join("result")).unwrap();
    for top in [
        "flake.nix",
        "flake.lock",
        "rust-toolchain.toml",
        ".cargo",
        "Cargo.lock",
        "nix",
        ".gitignore",
    ] {
        fs::rename(member.join(top), root.join(top)).unwrap();
    }
    let manifest = fs::read_to_string(member.join("Cargo.toml")).unwrap();
    let profiles = manifest
        .find("\n[profile.")
        .unwrap_or_else(|| panic!("no [profile.*] in the member's Cargo.toml:\n{manifest}"));
    fs::write(member.join("Cargo.toml"), &manifest[..profiles + 1]).unwrap();
    fs::write(
        root.join("Cargo.toml"),
        format!(
            "[workspace]\nmembers = [\"{}\"]\nresolver = \"2\"\n{}",
            built.name,
            &manifest[profiles..]
        ),
    )
    .unwrap();
    let flake = fs::read_to_string(root.join("flake.nix")).unwrap();
    let ravedude = flake.replace(
        "./Ravedude.toml",
        &format!("./{}/Ravedude.toml", built.name),
    );
    assert_ne!(ravedude, flake, "the flake reads no ./Ravedude.toml");
    fs::write(root.join("flake.nix"), ravedude).unwrap();
    git(root, &["init", "-q"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "a workspace"]);
    member
}
