//! Uploads to the simulated Uno, and which flasher does them: ravedude from PATH, else the one
//! the project's flake pins, else an error that names both ways to get one.

use std::path::PathBuf;
use std::time::Duration;

use super::{blink_firmware, firmware, flash_and_check, new_project};
use crate::common::process::{run_bounded, text};
use crate::common::sim::{ravedude_missing, sim_lock, sim_missing};
use crate::common::{nixflash, on_path, skip};

#[test]
fn ravedude_from_path_uploads_to_a_simulated_uno() {
    let name = "ravedude_from_path_uploads_to_a_simulated_uno";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    let _serial = sim_lock();
    let (_dir, project) = new_project("fw", "uno");
    let path = std::env::var_os("PATH").unwrap();
    let stderr = flash_and_check(&project, &path, Duration::from_secs(180));
    let ravedude = which::which("ravedude").unwrap();
    let flasher = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("Flasher "))
        .unwrap_or_default();
    assert!(
        flasher.trim_start().starts_with("Flasher ravedude ")
            && flasher.ends_with(&format!("({}, from PATH)", ravedude.display())),
        "nixflash does not say which ravedude it uses:\n{stderr}"
    );
    eprintln!(
        "ravedude command: {}",
        stderr
            .lines()
            .find(|l| l.trim_start().starts_with("Running "))
            .unwrap_or("")
    );
}

/// With no ravedude on PATH, the flake's `packages.<system>.flasher` is realised with Nix and used.
/// The project's flake is replaced by one whose flasher needs nothing from nixpkgs (unreachable
/// here): it copies the real ravedude (put in the flake's folder, as Nix's builders may not read
/// the user's home) into the store and links the real avrdude and avr-gcc.
#[test]
fn flake_flasher_is_used_when_path_has_no_ravedude() {
    let name = "flake_flasher_is_used_when_path_has_no_ravedude";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    if !on_path("nix") {
        return skip(name, "nix is not on PATH (../shared/tools/install-nix.sh)");
    }
    let ravedude = which::which("ravedude").unwrap();
    let avrdude = which::which("avrdude").unwrap();
    let avr_gcc = which::which("avr-gcc").unwrap();
    let nix = which::which("nix").unwrap();
    // PATH without ravedude: nix, avrdude and avr-gcc stay reachable.
    let mut dirs: Vec<PathBuf> = Vec::new();
    for p in [&nix, &avrdude, &avr_gcc] {
        let d = p.parent().unwrap().to_path_buf();
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs.push("/bin".into());
    let path = std::env::join_paths(&dirs).unwrap();
    if which::which_in("ravedude", Some(&path), "/").is_ok() {
        return skip(
            name,
            "ravedude is installed next to nix/avrdude, so PATH cannot leave it out",
        );
    }
    let _serial = sim_lock();
    let (_dir, project) = new_project("fw", "uno");
    let system = format!("{}-linux", std::env::consts::ARCH);
    std::fs::copy(&ravedude, project.join("ravedude-for-test")).unwrap();
    std::fs::write(
        project.join("flake.nix"),
        format!(
            r#"{{
  outputs = {{ self }}: {{
    packages.{system}.flasher = derivation {{
      name = "nixflash-test-flasher";
      system = "{system}";
      builder = "/bin/sh";
      args = [ "-c" "PATH=/usr/bin:/bin; mkdir -p $out/bin && cp ${{./ravedude-for-test}} $out/bin/ravedude && ln -s {avrdude} $out/bin/avrdude && ln -s {avr_gcc} $out/bin/avr-gcc" ];
    }};
  }};
}}
"#,
            avrdude = avrdude.display(),
            avr_gcc = avr_gcc.display(),
        ),
    )
    .unwrap();
    let stderr = flash_and_check(&project, &path, Duration::from_secs(300));
    assert!(
        stderr.contains("ravedude on PATH cannot be used (ravedude is not on PATH)"),
        "{stderr}"
    );
    let flasher = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("Flasher "))
        .unwrap_or_default();
    assert!(
        flasher.trim_start().starts_with("Flasher ravedude ")
            && flasher.contains("/nix/store/")
            && flasher.contains("-nixflash-test-flasher/bin/ravedude")
            && flasher.ends_with("pinned by the project's flake.nix)"),
        "{stderr}"
    );
    eprintln!("{flasher}");
}

/// The nix command that builds the flake's flasher gets what follows `--`: a flag Nix does not
/// know makes it fail, and the failure says so.
#[test]
fn the_flasher_build_gets_the_arguments_after_dashdash() {
    let name = "the_flasher_build_gets_the_arguments_after_dashdash";
    for tool in ["nix", "avr-gcc"] {
        if !on_path(tool) {
            return skip(name, &format!("{tool} is not on PATH"));
        }
    }
    let fw = blink_firmware();
    let (dir, project) = new_project("fw", "uno");
    // No ravedude on PATH: only nix.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(which::which("nix").unwrap(), bin.join("nix")).unwrap();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            .args(["--port", "/dev/null", "--", "--nixflash-test-no-such-flag"])
            .current_dir(&project)
            .env("PATH", &bin),
        Duration::from_secs(120),
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("building the one") && stderr.contains("(nix build .#flasher)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unrecognised flag '--nixflash-test-no-such-flag'"),
        "nix did not get the argument:\n{stderr}"
    );
}

#[test]
fn no_flasher_anywhere_names_both_ways_to_get_one() {
    let name = "no_flasher_anywhere_names_both_ways_to_get_one";
    if !on_path("avr-gcc") {
        return skip(
            name,
            "avr-gcc is not on PATH (it builds the firmware fixture)",
        );
    }
    let fw = firmware();
    let (dir, project) = new_project("fw", "uno");
    let empty = dir.path().join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let o = run_bounded(
        nixflash()
            .args(["flash", "--no-build", "--elf"])
            .arg(&fw.elf)
            // The flasher is looked for before anything is opened: any existing file will do.
            .args(["--port", "/dev/null"])
            .current_dir(&project)
            .env("PATH", &empty),
        Duration::from_secs(60),
    );
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: no usable ravedude: ravedude is not on PATH, and Nix is not installed"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: install it with `cargo install ravedude --locked`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: or install Nix (https://nixos.org/download)"),
        "{stderr}"
    );
}

/// A project made for a user's board (`inherit = "uno"`, an id ravedude does not have) flashes
/// with the real ravedude on a machine without the user's board files: the project carries the
/// board file in boards/, and its Ravedude.toml defines the board for ravedude inline, as its
/// `uno`.
#[test]
fn a_user_board_s_project_flashes_with_the_real_ravedude() {
    let name = "a_user_board_s_project_flashes_with_the_real_ravedude";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    let dir = tempfile::Builder::new()
        .prefix("nixflash-flash-test-")
        .tempdir()
        .unwrap();
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(cfg.join("nixflash/boards")).unwrap();
    std::fs::write(
        cfg.join("nixflash/boards/myuno.toml"),
        "inherit = \"uno\"\nid = \"myuno\"\nname = \"My Uno\"\n",
    )
    .unwrap();
    let o = run_bounded(
        nixflash()
            .args(["new", "fw", "--board", "myuno", "--no-git"])
            .current_dir(dir.path())
            .env("XDG_CONFIG_HOME", &cfg),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "nixflash new failed: {:?}", text(&o));
    let project = dir.path().join("fw");
    let ravedude_toml = std::fs::read_to_string(project.join("Ravedude.toml")).unwrap();
    assert!(
        ravedude_toml.contains("inherit = \"uno\"") && !ravedude_toml.contains("\"myuno\""),
        "{ravedude_toml}"
    );
    // The teammate's machine: no user board files at all.
    std::fs::remove_dir_all(&cfg).unwrap();
    assert!(project.join("boards/myuno.toml").is_file());
    let _serial = sim_lock();
    let path = std::env::var_os("PATH").unwrap();
    let stderr = flash_and_check(&project, &path, Duration::from_secs(180));
    // ravedude took the board from the inline definition.
    assert!(stderr.contains("My Uno"), "{stderr}");
}

/// The AVR family's `flasher.boards` are the boards the installed ravedude has by name: a board
/// named otherwise is defined inline in Ravedude.toml, one named so is not.
#[test]
fn ravedude_has_the_boards_the_avr_family_names() {
    let name = "ravedude_has_the_boards_the_avr_family_names";
    if let Some(why) = ravedude_missing() {
        return skip(name, &why);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Ravedude.toml"),
        "[general]\nboard = \"nixflash-no-such-board\"\n",
    )
    .unwrap();
    // ravedude reads its config before it looks at the port or the firmware.
    let o = run_bounded(
        std::process::Command::new("ravedude")
            .args(["-P", "/dev/null", "/nonexistent.elf"])
            .env("CARGO_MANIFEST_DIR", dir.path()),
        Duration::from_secs(30),
    );
    let (out, err) = text(&o);
    let all = format!("{out}{err}");
    let mut has: Vec<&str> = all
        .split_once("valid boards:")
        .unwrap_or_else(|| panic!("ravedude listed no boards:\n{all}"))
        .1
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    has.sort();
    let db = nixflash::board::Database::builtin().unwrap();
    let family = db.families().find(|f| f.id == "avr").unwrap();
    let mut named: Vec<&str> = family.flasher.boards().iter().map(String::as_str).collect();
    named.sort();
    assert_eq!(named, has, "boards/families/avr.toml's flasher.boards");
    // Every built-in AVR board is one ravedude has by name.
    for b in db.boards().filter(|b| b.family().id == "avr") {
        let fb = b.flasher_board().unwrap();
        assert_eq!(fb.named.as_ref(), b.flash.board.as_ref(), "{}", b.id);
    }
}
