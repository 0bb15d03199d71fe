//! Settings that never enter the Nix store: the firmware's reader ([`reader`]) and the Pico and
//! Uno firmware reading their regions in the emulators ([`firmware`]), `nixflash image` and
//! `flash --set` with a real ESP32-C3 ELF and the real espflash ([`image`]), and what they
//! refuse, before anything is built, written or flashed ([`refused`]), and per-device settings
//! ([`devices`]).

mod devices;
mod firmware;
mod image;
mod pico;
mod reader;
mod refused;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::common::process::{run_bounded, text};
use crate::common::{nixflash, repo};

/// `nixflash new fw --board <board> --no-git` in a fresh folder; with `table`, the partition
/// table of a Wi-Fi project (templates/esp-riscv/partitions.csv.jinja, plain CSV) in its root,
/// without, none (a project made without `-o wifi`).
pub(super) fn project(board: &str, table: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("nixflash-settings-test-")
        .tempdir()
        .unwrap();
    let o = run_bounded(
        nixflash()
            .args(["new", "fw", "--board", board, "--no-git"])
            .current_dir(dir.path()),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "nixflash new: {:?}", text(&o));
    let root = dir.path().join("fw");
    set_table(&root, table);
    (dir, root)
}

/// Gives the project at `root` the Wi-Fi project's partition table, or none.
pub(super) fn set_table(root: &Path, table: bool) {
    let path = root.join("partitions.csv");
    if table {
        std::fs::copy(
            repo().join("templates/esp-riscv/partitions.csv.jinja"),
            &path,
        )
        .unwrap();
    } else if path.exists() {
        std::fs::remove_file(&path).unwrap();
    }
}

/// Asserts that `o` failed with one `error:` line containing `says`, and ran no flasher.
pub(super) fn refused(o: &Output, says: &str) {
    let (stdout, stderr) = text(o);
    assert!(!o.status.success(), "not refused:\n{stdout}{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "not one error line:\n{stderr}");
    assert!(errors[0].contains(says), "no `{says}` in:\n{stderr}");
    assert!(
        !stderr.contains("caused by") && !stderr.contains("Running:"),
        "{stderr}"
    );
}

/// A Wi-Fi project's templates carry the settings: the partition table and the firmware's
/// reader (only with `wifi=on`), the README's section on settings and secrets, the flake's flash
/// app with the partition table, and .gitignore keeping settings.toml and images out of git.
#[test]
fn the_wifi_project_renders_its_settings_files_and_no_other_project_does() {
    use nixflash::render::{render_sources, Project};
    let db = nixflash::board::Database::builtin().unwrap();
    let c3 = db.get("esp32c3").unwrap();
    let files = |p: &Project| -> std::collections::BTreeMap<String, String> {
        render_sources(c3, p)
            .unwrap()
            .into_iter()
            .map(|f| (f.path.display().to_string(), f.contents))
            .collect()
    };
    let wifi = files(
        &Project::new("lamp")
            .with_option("wifi", "on")
            .with_option("async", "embassy")
            .with_option("alloc", "on"),
    );
    let table =
        std::fs::read_to_string(repo().join("templates/esp-riscv/partitions.csv.jinja")).unwrap();
    assert_eq!(wifi["partitions.csv"], table);
    assert!(wifi["src/settings.rs"].contains("pub fn parse(region: &[u8])"));
    let readme = &wifi["README.md"];
    for says in [
        "## Settings and secrets",
        "nixflash flash --set ssid=MyNetwork --set password=secret",
        "NIXFLASH_SET_<KEY>",
        "| `name` | the device's name (default `lamp`) |",
        "(`lamp-esp32c3-devkitm-1.bin` here",
        "bytes 0..4 the magic `NXFS`",
        "`[device.\"<serial>\"]` of such lines gives the board with that USB serial number",
        "`nixflash flash --all --set name=desk-{index}`",
    ] {
        assert!(
            readme.contains(says),
            "no `{says}` in the README:\n{readme}"
        );
    }
    assert!(
        wifi["flake.nix"].contains("--partition-table ${./partitions.csv} \"$@\""),
        "{}",
        wifi["flake.nix"]
    );
    assert!(wifi[".gitignore"].contains("\n/settings.toml\n/*.bin\n"));

    let plain = files(&Project::new("lamp"));
    assert!(!plain.contains_key("partitions.csv") && !plain.contains_key("src/settings.rs"));
    assert!(!plain["README.md"].contains("Settings and secrets"));
    assert!(!plain["flake.nix"].contains("partition-table"));
    assert!(plain[".gitignore"].contains("\n/settings.toml\n"));
}
