//! A Raspberry Pi Pico project with `-o async=embassy` (embassy-rp, the blinky as an async task)
//! built by real Nix (nix-offline) from scratch: the ELF and the UF2 file in `$out/bin`, the UF2
//! made in the derivation by the flake's picotool call (stood in by the host's elf2uf2-rs,
//! tests/fixtures/nix-offline/overlay.nix), equal to the one `nixflash flash` writes onto a boot
//! drive, the size report placed by the family's memory map, and that UF2 file run in rp2040js:
//! the greeting, then GPIO25 toggling every 500 ms ± 1 %; then a rebuild after an edit of src/
//! compiles the project's crate (and rp-pac and embassy-rp, which rp-pac's build script makes
//! cargo rebuild every time). The Pico's plain blinky (no options) is
//! covered by the compiled-firmware tests (tests/it/rp2.rs), which cost a Nix build less.

use std::fs;

use super::{from_scratch_with, ready, rebuild_after_an_edit, run_ok, size_line};
use crate::common;

#[test]
fn pico_embassy_builds_an_elf_and_its_uf2_offline_and_blinks_in_rp2040js() {
    let test = "pico_embassy_builds_an_elf_and_its_uf2_offline_and_blinks_in_rp2040js";
    let Some(off) = ready(test, &["git", "flip-link", "elf2uf2-rs"]) else {
        return;
    };

    let built = from_scratch_with(off, "pico", "pico", &["-o", "async=embassy"], &[]);
    let err = &built.log;
    let p = built.copy();
    let manifest = fs::read_to_string(p.dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("embassy-executor = "), "{manifest}");
    let bin = p.dir.join("result/bin");
    let elf = bin.join(format!("{}.elf", p.name));
    let uf2_path = bin.join(format!("{}.uf2", p.name));
    let uf2 = fs::read(&uf2_path).unwrap();
    let data = fs::read(&elf).unwrap();
    assert_eq!(u16::from_le_bytes([data[18], data[19]]), 40, "an ARM ELF");
    assert_eq!(uf2.len() % 512, 0);
    assert_eq!(&uf2[28..32], &0xe48b_ff56u32.to_le_bytes(), "RP2040 family");

    // nixflash's own converter, through `flash` onto a boot drive, makes the same file.
    let drive = p.dir.join("drive");
    fs::create_dir_all(&drive).unwrap();
    fs::write(drive.join("INFO_UF2.TXT"), "Board-ID: RPI-RP2\n").unwrap();
    run_ok(
        common::nixflash()
            .current_dir(&p.dir)
            .args(["flash", "--no-build", "--port"])
            .arg(&drive),
        "nixflash flash --no-build",
    );
    assert!(fs::read(drive.join(format!("{}.uf2", p.name))).unwrap() == uf2);

    // The size report: flash is what the UF2 file writes, less the padding of its sectors.
    let (flash, ram) = size_line(err);
    assert!(flash > 256 && (flash as usize) <= uf2.len() / 2, "{flash}");
    assert!(ram > 0 && ram < 4096, "{ram}");
    common::measured(&format!(
        "{} (async=embassy) is {flash} B of flash, {ram} B of RAM",
        p.name
    ));

    // The UF2 file Nix made, in the emulator.
    let Some(events) = common::rp2040::run(test, &uf2_path, 2600) else {
        return;
    };
    let greeting = format!("Hello from {} on the Raspberry Pi Pico!", p.name);
    let mean = common::rp2040::blinks(&events, &greeting);
    common::measured(&format!(
        "{} (async=embassy, built by Nix) in rp2040js: GPIO25 toggles every {mean:.3} ms",
        p.name
    ));
    // An edit of src/main.rs rebuilds the firmware's derivation alone (the dependencies were
    // built with the same linker name, flip-link), compiling the project's crate, and rp-pac and
    // embassy-rp over it: rp-pac 7.0.0's build script asks to be rerun when `device.x` in its
    // own folder changes, a file it does not have (it writes device.x to OUT_DIR), and cargo
    // reruns a build script whose file is missing every time, with Nix or without.
    rebuild_after_an_edit(off, &p, &["rp-pac", "embassy-rp"]);
}
