//! Cortex-M boards built by real Nix (nix-offline): one STM32 (the Black Pill, STM32F411CE with
//! stm32f4xx-hal) and one Nordic board (the BBC micro:bit v2, nRF52833 with nrf52833-hal), each
//! from scratch: an ARM ELF linked by flip-link (stood in by the host's, see
//! tests/fixtures/nix-offline/overlay.nix), its vector table at the start of the chip's flash and
//! its reset vector a Thumb address there, the size report's numbers inside the board's memory;
//! for the Black Pill also a rebuild after an edit of src/main.rs that compiles only the
//! project's crate. Every other Cortex-M board is compiled by tests/it/boards.rs.

use std::fs;

use object::{Object, ObjectSection};

use super::{from_scratch, ready, rebuild_after_an_edit, size_line};
use crate::common;

#[test]
fn blackpill_builds_from_scratch_and_rebuilds_only_the_firmware() {
    let test = "blackpill_builds_from_scratch_and_rebuilds_only_the_firmware";
    let Some(off) = ready(test, &["git", "flip-link"]) else {
        return;
    };
    let built = from_scratch(off, "blackpill", "blackpill-f411ce", &[]);
    firmware_is_in_flash(
        &built.elf(),
        0x0800_0000,
        512 * 1024,
        &built.log,
        128 * 1024,
    );
    rebuild_after_an_edit(off, &built.copy(), &[]);
}

#[test]
fn microbit_v2_builds_from_scratch() {
    let test = "microbit_v2_builds_from_scratch";
    let Some(off) = ready(test, &["git", "flip-link"]) else {
        return;
    };
    let built = from_scratch(off, "microbit", "microbit-v2", &[]);
    firmware_is_in_flash(&built.elf(), 0, 512 * 1024, &built.log, 128 * 1024);
}

/// The ELF is ARM; its vector table starts the flash at `origin`; the reset vector is the entry
/// point, a Thumb address in the flash; the size report says the firmware fits `flash` and `ram`.
fn firmware_is_in_flash(elf: &std::path::Path, origin: u64, flash: u64, log: &str, ram: u64) {
    let data = fs::read(elf).unwrap();
    let file = object::File::parse(&*data).unwrap();
    assert_eq!(file.architecture(), object::Architecture::Arm, "an ARM ELF");
    let table = file
        .section_by_name(".vector_table")
        .expect("the ELF has a .vector_table");
    assert_eq!(table.address(), origin, "the vector table starts the flash");
    let words = table.data().unwrap();
    let reset = u64::from(u32::from_le_bytes(words[4..8].try_into().unwrap()));
    let entry = file.entry();
    let range = origin..origin + flash;
    assert!(
        reset == entry && entry & 1 == 1 && range.contains(&(entry & !1)),
        "entry {entry:#x}, reset vector {reset:#x}, flash {range:#x?}"
    );
    // flip-link put the stack below .data and .bss: the initial stack pointer (the table's
    // first word) is below them, not at the end of RAM.
    let sp = u64::from(u32::from_le_bytes(words[0..4].try_into().unwrap()));
    let data_start = file
        .section_by_name(".data")
        .map(|s| s.address())
        .expect("a .data section");
    assert!(
        sp <= data_start && sp >= 0x2000_0000,
        "initial stack pointer {sp:#x}, .data at {data_start:#x}: not linked by flip-link"
    );
    let (used_flash, used_ram) = size_line(log);
    assert!(used_flash > 256 && used_flash < flash, "{used_flash}");
    assert!(used_ram > 0 && used_ram < ram, "{used_ram}");
    common::measured(&format!(
        "{}: built by Nix, {used_flash} B of flash, {used_ram} B of RAM, vector table at \
         {origin:#x}, entry {entry:#x}, initial stack {sp:#x}",
        elf.display()
    ));
}
