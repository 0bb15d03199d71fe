//! The firmware's side of the settings region where the Mega 2560 keeps it, above 64 KiB (read
//! with `elpm`): the rendered Mega 2560 project (compiled once per run, `common::firmware`) with
//! a region that nixflash encoded put where the board's data says (`memory.settings`), run in
//! simavr. A region with the name greets by it; one with a payload byte flipped makes the
//! firmware say so in one line, then greet as without settings. The Pico's and the Uno's regions
//! go through `nixflash image` and `flash --set` to rp2040js and the simulated Uno
//! (tests/it/settings/pico.rs, tests/it/flash/avr_settings.rs, tests/it/flash/many.rs).
//!
//! The image is made here, one flat HEX file from address 0: simavr takes a second block of a
//! HEX file for a bootloader and starts there.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nixflash::board::{Board, Database};
use nixflash::settings::{encode_sized, gather};

use crate::common::firmware::{build, Kind};
use crate::common::process::{run_bounded, text};
use crate::common::{on_path, skip};

const DAMAGED: &str = "Settings: the settings region is damaged (its checksum does not match)";

fn board(id: &str) -> Board {
    Database::builtin().unwrap().get(id).unwrap().clone()
}

/// The board's region holding `name=<name>`, and the same with a payload byte flipped.
fn regions(board: &Board, name: &str) -> (u32, Vec<u8>, Vec<u8>) {
    let r = board
        .memory
        .settings
        .expect("the board has a settings region");
    let flags = vec![format!("name={name}")];
    let region = encode_sized(&gather(&flags, Vec::new(), None).unwrap(), r.size as usize).unwrap();
    let mut damaged = region.clone();
    damaged[12 + "name=".len()] ^= 0x20;
    (u32::try_from(r.at).unwrap(), region, damaged)
}

/// The ELF's loadable bytes: (load address, bytes) of each PT_LOAD segment with bytes in the file.
fn loadable(elf: &Path) -> Vec<(u32, Vec<u8>)> {
    use object::read::elf::{FileHeader, ProgramHeader};
    let data = std::fs::read(elf).unwrap();
    let h = object::elf::FileHeader32::<object::Endianness>::parse(&*data).unwrap();
    let e = h.endian().unwrap();
    h.program_headers(e, &*data)
        .unwrap()
        .iter()
        .filter(|ph| ph.p_type(e) == object::elf::PT_LOAD && ph.p_filesz(e) > 0)
        .map(|ph| (ph.p_paddr(e), ph.data(e, &*data).unwrap().to_vec()))
        .collect()
}

/// An Intel HEX file of `chunks` (address, bytes), with a segment record (type 02) before the
/// first line of each 64 KiB, as avr-objcopy writes them.
fn intel_hex(chunks: &[(u32, Vec<u8>)]) -> String {
    let mut out = String::new();
    let mut record = |kind: u8, address: u16, data: &[u8]| {
        let mut r = vec![data.len() as u8, (address >> 8) as u8, address as u8, kind];
        r.extend(data);
        let sum = r.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        r.push(sum.wrapping_neg());
        out.push(':');
        r.iter().for_each(|b| out.push_str(&format!("{b:02X}")));
        out.push('\n');
    };
    let mut segment = 0;
    for (start, bytes) in chunks {
        for (i, line) in bytes.chunks(16).enumerate() {
            let address = start + 16 * i as u32;
            let within = (address & 0xFFFF) as usize + line.len() <= 0x1_0000;
            assert!(within, "a line at {address:#x} crosses 64 KiB");
            if address >> 16 != segment {
                segment = address >> 16;
                record(2, 0, &((segment << 12) as u16).to_be_bytes());
            }
            record(0, address as u16, line);
        }
    }
    record(1, 0, &[]);
    out
}

/// Runs the HEX file `hex` in simavr on `mcu` for a simulated second: what the firmware sent on
/// its serial port (simavr prints it on stderr, a line at a time).
fn simavr(mcu: &str, hex: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fw.hex"), hex).unwrap();
    // An input trace whose last change, at 1 s, ends the run (as `nixflash sim` stops simavr).
    let stop = "$timescale 1us $end\n$scope module t $end\n$var wire 1 ! end $end\n$upscope $end\n\
                $enddefinitions $end\n#0\n0!\n#1000000\n1!\n";
    std::fs::write(dir.path().join("stop.vcd"), stop).unwrap();
    let o = run_bounded(
        Command::new("simavr")
            .args(["--input", "stop.vcd", "-m", mcu, "-f", "16000000", "fw.hex"])
            .current_dir(dir.path()),
        Duration::from_secs(120),
    );
    let (out, err) = text(&o);
    assert!(
        o.status.success() && out.contains("Load HEX flash 00000000"),
        "{out}{err}"
    );
    // The serial output is on stderr.
    err
}

#[test]
fn mega2560_firmware_reads_its_region_above_64_kib() {
    let test = "mega2560_firmware_reads_its_region_above_64_kib";
    if !on_path("simavr") {
        return skip(test, "simavr is not on PATH (apt install simavr)");
    }
    let built = match build(Kind::Mega2560) {
        Ok(b) => b,
        Err(why) => return skip(test, &why),
    };
    let (at, region, damaged) = regions(&board("mega2560"), "desk-7");
    assert!(at >= 0x1_0000, "{at:#x}: elpm is what this test is for");
    let elf = loadable(&built.elf);
    for (region, lines) in [
        (region, vec!["Hello from desk-7 on the Arduino Mega 2560!"]),
        (
            damaged,
            vec![DAMAGED, "Hello from fw on the Arduino Mega 2560!"],
        ),
    ] {
        // One block of flash from 0 (simavr takes a second block for a bootloader and starts
        // there): the firmware, erased flash, the region.
        let mut flash = vec![0xFF; at as usize];
        for (address, bytes) in &elf {
            flash[*address as usize..][..bytes.len()].copy_from_slice(bytes);
        }
        flash.extend(region);
        let said = simavr("atmega2560", &intel_hex(&[(0, flash)]));
        let found: Vec<usize> = lines.iter().filter_map(|l| said.find(l)).collect();
        assert!(
            found.len() == lines.len() && found.windows(2).all(|w| w[0] < w[1]),
            "{lines:?} not in what the firmware said: {said}"
        );
        assert_eq!(said.matches("Hello from").count(), 1, "{said}");
    }
}
