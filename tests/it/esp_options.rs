//! The ESP32 RISC-V project options compiled with the real compiler (`common::firmware`), pruned
//! so that each option is in at least one project per chip while CI stays in its budget:
//! - ESP32-C2: `-o wifi -o log=defmt` (async=embassy and alloc come with wifi);
//! - ESP32-C3: `-o wifi` and `-o wifi -o log=defmt` (real Nix builds `-o wifi` in
//!   tests/nix_build.rs), `-o alloc` (the blocking blinky with a heap; `log=defmt` alone is
//!   tests/it/firmware.rs's);
//! - ESP32-C6: `-o wifi -o log=defmt` (so that every chip compiles `log=defmt` with an option);
//! - ESP32-H2 (no Wi-Fi): `-o async=embassy -o alloc -o log=defmt`.
//!
//! Each firmware fits its board, carries the strings its program prints (as defmt frames' table
//! entries with `log=defmt`), and espflash makes an image of it: for a Wi-Fi project one merged
//! image with the project's partitions.csv, as `nixflash image` writes it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use object::{Object, ObjectSection, ObjectSymbol};

use crate::common::firmware::{build, elf_machine, Built, Kind, ELFCLASS32, EM_RISCV};
use crate::common::process::{run_bounded, text};
use crate::common::{self, on_path};

/// What a Wi-Fi firmware prints without settings: the problem and the command that fixes it.
const NO_SETTINGS: &str = "No Wi-Fi settings: {}";
const HINT: &str = "Give them with: nixflash flash --set ssid=<network> --set password=<secret>";

#[test]
fn esp32c3_wifi_project_compiles_to_a_merged_image() {
    let test = "esp32c3_wifi_project_compiles_to_a_merged_image";
    if let Some(built) = built(test, Kind::Esp32c3Wifi) {
        wifi_checks(test, &built, false);
    }
}

#[test]
fn esp32c3_wifi_defmt_project_compiles_to_a_merged_image() {
    let test = "esp32c3_wifi_defmt_project_compiles_to_a_merged_image";
    if let Some(built) = built(test, Kind::Esp32c3WifiDefmt) {
        wifi_checks(test, &built, true);
    }
}

#[test]
fn esp32c2_wifi_defmt_project_compiles_to_a_merged_image() {
    let test = "esp32c2_wifi_defmt_project_compiles_to_a_merged_image";
    if let Some(built) = built(test, Kind::Esp32c2WifiDefmt) {
        wifi_checks(test, &built, true);
    }
}

#[test]
fn esp32c6_wifi_defmt_project_compiles_to_a_merged_image() {
    let test = "esp32c6_wifi_defmt_project_compiles_to_a_merged_image";
    if let Some(built) = built(test, Kind::Esp32c6WifiDefmt) {
        wifi_checks(test, &built, true);
    }
}

/// The async blinky with a heap, logging with defmt: its task's and its greeting's frames.
#[test]
fn esp32h2_embassy_alloc_defmt_project_compiles_to_an_app_image() {
    let test = "esp32h2_embassy_alloc_defmt_project_compiles_to_an_app_image";
    let Some(built) = built(test, Kind::Esp32h2EmbassyAllocDefmt) else {
        return;
    };
    let main = std::fs::read_to_string(built.project.join("src/main.rs")).unwrap();
    for want in [
        "#[embassy_executor::task]",
        "Timer::after(Duration::from_millis(500))",
        "const HEAP_SIZE: usize",
    ] {
        assert!(main.contains(want), "src/main.rs has no {want}:\n{main}");
    }
    assert_defmt(
        &built.elf,
        &[
            "{=str} ({=usize} of {=usize} heap bytes free)",
            "GPIO8 is {=str}",
        ],
    );
    image(test, &built, false);
}

/// The blocking blinky with a heap: its greeting is a String that says how much heap is free.
#[test]
fn esp32c3_alloc_project_compiles_to_an_app_image() {
    let test = "esp32c3_alloc_project_compiles_to_an_app_image";
    let Some(built) = built(test, Kind::Esp32c3Alloc) else {
        return;
    };
    assert_text(
        &built.elf,
        &[
            "Hello from fw on the ESP32-C3-DevKitM-1!",
            " heap bytes free)",
        ],
    );
    image(test, &built, false);
}

/// The firmware of `kind`, or None after [`common::skip`].
fn built(test: &str, kind: Kind) -> Option<Built> {
    match build(kind) {
        Ok(b) => {
            assert_eq!(elf_machine(&b.elf), (ELFCLASS32, EM_RISCV));
            Some(b)
        }
        Err(why) => {
            common::skip(test, &why);
            None
        }
    }
}

/// A Wi-Fi project: the station's sources, nothing secret at build time, the strings it prints,
/// and a merged image with its partition table.
fn wifi_checks(test: &str, built: &Built, defmt: bool) {
    for file in [
        "src/main.rs",
        "src/wifi.rs",
        "Cargo.toml",
        ".cargo/config.toml",
    ] {
        let text = std::fs::read_to_string(built.project.join(file)).unwrap();
        for secret in ["env!(", "option_env!(", "SSID", "PASSWORD"] {
            assert!(!text.contains(secret), "{file} has {secret}:\n{text}");
        }
    }
    let wifi = std::fs::read_to_string(built.project.join("src/wifi.rs")).unwrap();
    for want in [
        "settings::parse(",
        "connect_async()",
        "wait_for_disconnect_async()",
        "dns_query(",
        "wait_config_up()",
    ] {
        assert!(wifi.contains(want), "src/wifi.rs has no {want}");
    }
    if defmt {
        assert_defmt(
            &built.elf,
            &[NO_SETTINGS, HINT, "Got address {}", "GET {}: {}"],
        );
    } else {
        assert_text(&built.elf, &["No Wi-Fi settings: ", HINT, "Got address "]);
    }
    image(test, built, true);
}

/// The strings of defmt log calls in the ELF's .defmt table (as `"data":"<format>"` symbols).
fn assert_defmt(elf: &Path, wants: &[&str]) {
    let data = std::fs::read(elf).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let table = elf
        .section_by_name(".defmt")
        .expect("no .defmt section")
        .index();
    let strings: Vec<String> = elf
        .symbols()
        .filter(|s| s.section_index() == Some(table))
        .filter_map(|s| s.name().ok().map(str::to_string))
        .collect();
    for want in wants {
        let quoted = format!("\"data\":\"{want}\"");
        assert!(
            strings.iter().any(|s| s.contains(&quoted)),
            "no {quoted} in the defmt table: {strings:#?}"
        );
    }
}

/// Text the firmware prints, somewhere in its ELF's bytes.
fn assert_text(elf: &Path, wants: &[&str]) {
    let data = std::fs::read(elf).unwrap();
    for want in wants {
        assert!(
            data.windows(want.len()).any(|w| w == want.as_bytes()),
            "{} has no {want:?}",
            elf.display()
        );
    }
}

/// `espflash save-image`: an app image, or with `merged` one image from offset 0 (bootloader,
/// the project's partitions.csv, the app at 0x10000), each starting with the image magic 0xE9.
fn image(test: &str, built: &Built, merged: bool) {
    if !on_path("espflash") {
        return common::skip(
            test,
            "espflash is not on PATH (cargo install espflash --locked)",
        );
    }
    let db = nixflash::board::Database::builtin().unwrap();
    let board = db.get(&built.board).unwrap();
    let out = built
        .elf
        .with_extension(if merged { "merged.bin" } else { "bin" });
    let mut cmd = Command::new("espflash");
    let chip = board.flash.chip.as_deref().unwrap_or(&board.chip);
    cmd.args(["save-image", "--chip", chip]);
    if merged {
        cmd.args(["--merge", "--skip-padding", "--partition-table"])
            .arg(built.project.join("partitions.csv"));
    }
    cmd.arg(&built.elf).arg(&out);
    let o = run_bounded(&mut cmd, Duration::from_secs(120));
    let (stdout, err) = text(&o);
    assert!(
        o.status.success(),
        "espflash save-image failed for {}:\n{stdout}{err}",
        built.elf.display()
    );
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(bytes.first(), Some(&0xE9), "not an ESP image");
    if merged {
        assert_eq!(bytes.get(0x10000), Some(&0xE9), "no app image at 0x10000");
    }
    common::measured(&format!(
        "{}: espflash save-image{} wrote {} bytes",
        built
            .project
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy(),
        if merged { " --merge" } else { "" },
        bytes.len()
    ));
}
