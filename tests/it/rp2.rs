//! The Raspberry Pi Pico family for real: the rendered `pico` and `pico2` projects, plain and with
//! `-o async=embassy`, compiled with the real compiler, flashed by `nixflash flash` onto a folder
//! made to look like the chip's mounted boot drive, the UF2 file found there read back block by
//! block (by this file's own reader) and compared with the ELF's loadable bytes, and the Pico's
//! firmware run from that UF2 file in the rp2040js emulator (tests/it/common/rp2040.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::firmware::{build, Kind};
use crate::common::{self, process::run_bounded, process::text, rp2040, skip};

pub(crate) const RP2040: u32 = 0xe48b_ff56;
const RP2350_ARM_S: u32 = 0xe48b_ff59;

/// A folder that looks like the boot drive an RP2 chip shows in BOOTSEL mode.
pub(crate) fn boot_drive(parent: &Path, label: &str, board_id: &str) -> PathBuf {
    let d = parent.join(label);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("INFO_UF2.TXT"),
        format!("UF2 Bootloader v3.0\r\nModel: Raspberry Pi RP2\r\nBoard-ID: {board_id}\r\n"),
    )
    .unwrap();
    std::fs::write(d.join("INDEX.HTM"), "<html></html>\r\n").unwrap();
    d
}

/// `nixflash flash --elf <elf> --port <drive>` in `project`, with no picotool on PATH.
pub(crate) fn flash(project: &Path, elf: &Path, drive: &Path) -> std::process::Output {
    run_bounded(
        common::nixflash()
            .current_dir(project)
            .env("PATH", "/usr/bin:/bin")
            .env("XDG_CONFIG_HOME", project.join(".cfg"))
            .arg("flash")
            .arg("--elf")
            .arg(elf)
            .arg("--port")
            .arg(drive),
        Duration::from_secs(60),
    )
}

/// One UF2 block, as read here.
pub(crate) struct Block {
    pub address: u32,
    pub data: Vec<u8>,
}

/// Reads a UF2 file, checking every block: the magic numbers, the family-id flag and `family`,
/// 256-byte payloads at 256-byte aligned, rising addresses, block numbers 0.. and the count.
pub(crate) fn read_uf2(bytes: &[u8], family: u32) -> Vec<Block> {
    assert!(
        !bytes.is_empty() && bytes.len() % 512 == 0,
        "{} bytes",
        bytes.len()
    );
    let count = bytes.len() / 512;
    let mut out: Vec<Block> = Vec::new();
    for (n, b) in bytes.chunks(512).enumerate() {
        let w = |i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(
            (w(0), w(1), w(127)),
            (0x0A32_4655, 0x9E5D_5157, 0x0AB1_6F30),
            "block {n}"
        );
        assert_eq!(w(2) & 0x2000, 0x2000, "block {n}: no family id flag");
        assert_eq!(w(7), family, "block {n}: family id {:#x}", w(7));
        assert_eq!(w(4), 256, "block {n}: payload size");
        assert_eq!(
            (w(5), w(6)),
            (n as u32, count as u32),
            "block {n}: number/count"
        );
        let address = w(3);
        assert_eq!(address % 256, 0, "block {n}: address {address:#x}");
        if let Some(prev) = out.last() {
            assert!(
                address > prev.address,
                "block {n}: {address:#x} after {:#x}",
                prev.address
            );
        }
        assert!(
            b[32 + 256..508].iter().all(|&x| x == 0),
            "block {n}: padding"
        );
        out.push(Block {
            address,
            data: b[32..32 + 256].to_vec(),
        });
    }
    out
}

/// The ELF's loadable bytes by address (PT_LOAD segments' file bytes at their load address).
fn loadable(elf: &Path) -> BTreeMap<u32, u8> {
    use object::read::elf::{FileHeader, ProgramHeader};
    let data = std::fs::read(elf).unwrap();
    let h = object::elf::FileHeader32::<object::Endianness>::parse(&*data).unwrap();
    let e = h.endian().unwrap();
    let mut out = BTreeMap::new();
    for ph in h.program_headers(e, &*data).unwrap() {
        if ph.p_type(e) == object::elf::PT_LOAD && ph.p_filesz(e) > 0 {
            let bytes = ph.data(e, &*data).unwrap();
            for (i, b) in bytes.iter().enumerate() {
                out.insert(ph.p_paddr(e) + i as u32, *b);
            }
        }
    }
    out
}

/// Checks that the blocks hold exactly the ELF's loadable bytes (zeros elsewhere), from the start
/// of flash; returns the flash bytes the firmware occupies.
fn same_bytes(blocks: &[Block], elf: &Path) -> usize {
    let want = loadable(elf);
    assert_eq!(
        blocks[0].address, 0x1000_0000,
        "the firmware starts the flash"
    );
    let mut got = BTreeMap::new();
    for b in blocks {
        for (i, x) in b.data.iter().enumerate() {
            got.insert(b.address + i as u32, *x);
        }
    }
    for (a, x) in &want {
        assert_eq!(got.get(a), Some(x), "byte at {a:#x}");
    }
    for (a, x) in &got {
        assert!(
            want.contains_key(a) || *x == 0,
            "{a:#x} is {x:#x}, not in the ELF"
        );
    }
    want.len()
}

#[test]
fn pico_blinky_flashes_onto_its_boot_drive_and_blinks_in_rp2040js() {
    let test = "pico_blinky_flashes_onto_its_boot_drive_and_blinks_in_rp2040js";
    let built = match build(Kind::Pico) {
        Ok(b) => b,
        Err(why) => return skip(test, &why),
    };
    let (project, elf) = (built.project, built.elf);
    let tmp = tempfile::tempdir().unwrap();
    let drive = boot_drive(tmp.path(), "RPI-RP2", "RPI-RP2");
    let o = flash(&project, &elf, &drive);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    let uf2 = drive.join("fw.uf2");
    assert!(err.contains(&format!("wrote {}", uf2.display())), "{err}");
    let blocks = read_uf2(&std::fs::read(&uf2).unwrap(), RP2040);
    let bytes = same_bytes(&blocks, &elf);
    let board = nixflash::board::Database::builtin().unwrap();
    let size = nixflash::firmware::size::analyze_file(&elf, board.get("pico").unwrap()).unwrap();
    assert_eq!(
        size.flash.used as usize, bytes,
        "the size report counts the image"
    );
    crate::common::measured(&format!("pico blinky: {size}; UF2 {} blocks", blocks.len()));

    // Independently: elf2uf2-rs (RP2040 only), when installed, makes the same file.
    match which::which("elf2uf2-rs") {
        Ok(tool) => {
            let theirs = tmp.path().join("elf2uf2-rs.uf2");
            let o = run_bounded(
                Command::new(tool).arg(&elf).arg(&theirs),
                Duration::from_secs(60),
            );
            assert!(o.status.success(), "{:?}", text(&o));
            assert!(std::fs::read(&theirs).unwrap() == std::fs::read(&uf2).unwrap());
        }
        Err(_) => skip(
            test,
            "elf2uf2-rs is not installed (cargo install elf2uf2-rs)",
        ),
    }

    // The firmware from the drive, in the emulator: the greeting on UART0, GPIO25 every 500 ms.
    let Some(events) = rp2040::run(test, &uf2, 2600) else {
        return;
    };
    let mean = rp2040::blinks(&events, "Hello from fw on the Raspberry Pi Pico!");
    crate::common::measured(&format!(
        "pico blinky in rp2040js: GPIO25 toggles every {mean:.3} ms"
    ));
}

#[test]
fn pico_embassy_blinky_flashes_onto_its_boot_drive_and_blinks_in_rp2040js() {
    let test = "pico_embassy_blinky_flashes_onto_its_boot_drive_and_blinks_in_rp2040js";
    let built = match build(Kind::PicoEmbassy) {
        Ok(b) => b,
        Err(why) => return skip(test, &why),
    };
    let (project, elf) = (built.project, built.elf);
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("embassy-rp = "), "{manifest}");
    let tmp = tempfile::tempdir().unwrap();
    let drive = boot_drive(tmp.path(), "RPI-RP2", "RPI-RP2");
    let o = flash(&project, &elf, &drive);
    assert!(o.status.success(), "{:?}", text(&o));
    let uf2 = drive.join("fw.uf2");
    let blocks = read_uf2(&std::fs::read(&uf2).unwrap(), RP2040);
    same_bytes(&blocks, &elf);
    // The boot ROM runs the first 256 bytes of flash only when their last word is the CRC-32
    // (MPEG-2) of the 252 before: the project's boot2, not none and not two.
    let boot2 = &blocks[0].data;
    assert_eq!(
        crc32_mpeg2(&boot2[..252]).to_le_bytes(),
        boot2[252..256],
        "no valid boot2 at the start of flash"
    );
    let board = nixflash::board::Database::builtin().unwrap();
    let size = nixflash::firmware::size::analyze_file(&elf, board.get("pico").unwrap()).unwrap();
    crate::common::measured(&format!("pico embassy blinky: {size}"));

    let Some(events) = rp2040::run(test, &uf2, 2600) else {
        return;
    };
    let mean = rp2040::blinks(&events, "Hello from fw on the Raspberry Pi Pico!");
    crate::common::measured(&format!(
        "pico embassy blinky in rp2040js: GPIO25 toggles every {mean:.3} ms"
    ));
}

/// CRC-32/MPEG-2 (polynomial 0x04c11db7, not reflected, from all ones), as the RP2040's boot ROM
/// checks boot2.
fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[test]
fn pico2_blinky_compiles_and_flashes_a_uf2_for_the_rp2350_arm_cores() {
    pico2_flashes(
        "pico2_blinky_compiles_and_flashes_a_uf2_for_the_rp2350_arm_cores",
        Kind::Pico2,
    );
}

#[test]
fn pico2_embassy_blinky_compiles_and_flashes_a_uf2_for_the_rp2350_arm_cores() {
    pico2_flashes(
        "pico2_embassy_blinky_compiles_and_flashes_a_uf2_for_the_rp2350_arm_cores",
        Kind::Pico2Embassy,
    );
}

/// The Pico 2 project `kind`, compiled, flashed onto a boot drive: refused by an RP2040's, taken by
/// an RP2350's as a UF2 file for the Arm cores that holds the ELF's bytes and, in the first 4 KiB
/// of flash, the image definition the boot ROM looks for.
fn pico2_flashes(test: &str, kind: Kind) {
    let built = match build(kind) {
        Ok(b) => b,
        Err(why) => return skip(test, &why),
    };
    let (project, elf) = (built.project, built.elf);
    let tmp = tempfile::tempdir().unwrap();
    // The RP2040's drive is refused, the RP2350's takes it.
    let rp2040 = boot_drive(tmp.path(), "RPI-RP2", "RPI-RP2");
    let o = flash(&project, &elf, &rp2040);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("its Board-ID is RPI-RP2"), "{err}");
    assert!(!rp2040.join("fw.uf2").exists());
    let drive = boot_drive(tmp.path(), "RP2350", "RP2350");
    let o = flash(&project, &elf, &drive);
    assert!(o.status.success(), "{:?}", text(&o));
    let blocks = read_uf2(&std::fs::read(drive.join("fw.uf2")).unwrap(), RP2350_ARM_S);
    same_bytes(&blocks, &elf);
    let board = nixflash::board::Database::builtin().unwrap();
    let size = nixflash::firmware::size::analyze_file(&elf, board.get("pico2").unwrap()).unwrap();
    crate::common::measured(&format!("{kind:?} firmware: {size}"));
    // The boot ROM looks for the image definition (a block from 0xffffded3 to 0xab123579) in the
    // first 4 KiB of flash.
    let first: Vec<u8> = blocks
        .iter()
        .filter(|b| b.address < 0x1000_1000)
        .flat_map(|b| b.data.clone())
        .collect();
    let words: Vec<u32> = first
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let start = words.iter().position(|&w| w == 0xffff_ded3);
    let end = words.iter().position(|&w| w == 0xab12_3579);
    assert!(
        matches!((start, end), (Some(s), Some(e)) if s < e),
        "no image definition in the first 4 KiB"
    );
}

#[test]
fn flash_without_a_boot_drive_says_to_hold_bootsel_and_where_it_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run_bounded(
        common::nixflash()
            .current_dir(tmp.path())
            .env("XDG_CONFIG_HOME", tmp.path().join(".cfg"))
            .args(["new", "fw", "--board", "pico", "--no-git"]),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let project = tmp.path().join("fw");
    // Any file will do: the drive is looked for first.
    let elf = common::fixtures().join("elf/esp32c3-blinky.elf");
    let o = run_bounded(
        common::nixflash()
            .current_dir(&project)
            .env("PATH", "/usr/bin:/bin")
            .env("USER", "nixflash-test-user-without-drives")
            .env_remove("NIXFLASH_BOOT_DRIVE")
            .args(["flash", "--elf"])
            .arg(&elf),
        Duration::from_secs(60),
    );
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("no RPI-RP2 boot drive of the Raspberry Pi Pico"),
        "{err}"
    );
    assert!(
        err.contains("/media/nixflash-test-user-without-drives, /run/media/"),
        "{err}"
    );
    assert!(
        err.contains("hold the BOOTSEL button while you plug"),
        "{err}"
    );

    // A drive given by the environment; the ELF is then checked before anything is written.
    let drive = boot_drive(tmp.path(), "RPI-RP2", "RPI-RP2");
    let o = run_bounded(
        common::nixflash()
            .current_dir(&project)
            .env("NIXFLASH_BOOT_DRIVE", &drive)
            .args(["flash", "--elf"])
            .arg(&elf),
        Duration::from_secs(60),
    );
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("is not ARM firmware (ELF machine 243)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&drive).unwrap().count(),
        2,
        "nothing written"
    );
}
