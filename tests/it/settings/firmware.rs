//! The firmware's side of the settings region on the boards that keep it at a fixed place in
//! flash, run for real: the rendered Pico and Uno projects (compiled once per run,
//! `common::firmware`) with a region that nixflash encoded (nixflash::settings::encode) put where
//! the board's data says (`memory.settings`), in rp2040js (a UF2 file with the region's blocks
//! after the firmware's) and in the simulated Uno (firmware and region uploaded through its
//! bootloader by avrdude, as one Intel HEX file). A region with the name greets by it; one with
//! a payload byte flipped makes the firmware say so in one line, then greet as without settings
//! and blink as always. Without a region the greeting is the usual one: tests/it/rp2.rs and
//! tests/it/flash check it.
//!
//! The images are made here, not by `nixflash image`: these tests check the firmware alone.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use nixflash::board::{Board, Database};
use nixflash::settings::{encode, gather};

use crate::common::firmware::{build, Kind};
use crate::common::process::{run_bounded, text};
use crate::common::sim::{measured_half_period, sim_lock, sim_missing, SimUno};
use crate::common::{nixflash, on_path, rp2040, skip};

/// The UF2 family id of the RP2040.
const RP2040: u32 = 0xe48b_ff56;
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
    let mut region = encode(&gather(&flags, Vec::new(), None).unwrap()).unwrap();
    assert!(region[r.size as usize..].iter().all(|b| *b == 0xFF));
    region.truncate(r.size as usize);
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

/// A UF2 file for the RP2040 with `chunks` (address, bytes): one block per 256-byte page, the
/// bytes no chunk covers zero.
fn uf2(chunks: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut pages: BTreeMap<u32, [u8; 256]> = BTreeMap::new();
    for (start, bytes) in chunks {
        for (i, b) in bytes.iter().enumerate() {
            let at = start + i as u32;
            pages.entry(at & !255).or_insert([0; 256])[(at & 255) as usize] = *b;
        }
    }
    let mut out = Vec::new();
    for (n, (address, page)) in pages.iter().enumerate() {
        let words = [
            0x0A32_4655,
            0x9E5D_5157,
            0x2000,
            *address,
            256,
            n as u32,
            pages.len() as u32,
            RP2040,
        ];
        words.iter().for_each(|w| out.extend(w.to_le_bytes()));
        out.extend(page);
        out.resize(out.len() + 476 - 256, 0);
        out.extend(0x0AB1_6F30u32.to_le_bytes());
    }
    out
}

/// Runs `uf2` in rp2040js: the lines on UART0 before the blinking's, having checked the blinking
/// (the lines it says, GPIO25 every 500 ms) from the last of them on.
fn run_pico(test: &str, uf2: &[u8], first: &[&str]) -> Option<()> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fw.uf2");
    std::fs::write(&file, uf2).unwrap();
    let events = rp2040::run(test, &file, 2600)?;
    let lines: Vec<&str> = events.iter().filter_map(|e| e["line"].as_str()).collect();
    assert_eq!(&lines[..first.len().min(lines.len())], first, "{lines:?}");
    // The greeting is the last of `first`: from there on, a blinky's usual run.
    let skipped = first.len() - 1;
    let mut dropped = 0;
    let rest: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| {
            let drop = e["line"].is_string() && dropped < skipped;
            dropped += usize::from(drop);
            !drop
        })
        .cloned()
        .collect();
    rp2040::blinks(&rest, first[skipped]);
    Some(())
}

#[test]
fn pico_firmware_greets_by_the_name_in_its_region_and_says_when_it_is_damaged() {
    let test = "pico_firmware_greets_by_the_name_in_its_region_and_says_when_it_is_damaged";
    let built = match build(Kind::Pico) {
        Ok(b) => b,
        Err(why) => return skip(test, &why),
    };
    let pico = board("pico");
    let (at, region, damaged) = regions(&pico, "desk-7");
    // The firmware's loadable bytes end before the region.
    let elf = loadable(&built.elf);
    for (address, bytes) in &elf {
        assert!(
            *address as usize + bytes.len() <= at as usize,
            "{address:#x}"
        );
    }
    let with = |region: Vec<u8>| uf2(&[elf.clone(), vec![(at, region)]].concat());
    let named = with(region);
    if run_pico(
        test,
        &named,
        &["Hello from desk-7 on the Raspberry Pi Pico!"],
    )
    .is_none()
    {
        return;
    }
    let bad = with(damaged);
    run_pico(
        test,
        &bad,
        &[DAMAGED, "Hello from fw on the Raspberry Pi Pico!"],
    );
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

/// Uploads `hex` to a fresh simulated Uno with avrdude (through the bootloader, as ravedude
/// does), then checks PB5's 500 ms and returns what the firmware printed.
fn run_uno(hex: &str, what: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fw.hex");
    std::fs::write(&file, hex).unwrap();
    let mut sim = SimUno::start();
    let mut flash = std::ffi::OsString::from("flash:w:");
    flash.push(&file);
    flash.push(":i");
    let o = run_bounded(
        Command::new("avrdude")
            .args(["-c", "arduino", "-p", "atmega328p", "-b", "115200", "-D"])
            .args(["-P", &sim.pty, "-U"])
            .arg(flash),
        Duration::from_secs(120),
    );
    let done = Instant::now();
    let (out, err) = text(&o);
    assert!(
        o.status.success() && err.contains("bytes of flash verified"),
        "{out}{err}"
    );
    let half = measured_half_period(&mut sim, done, what, 0.5);
    assert!((half - 0.5).abs() < 0.0025, "PB5 toggles every {half} s");
    let m = run_bounded(
        nixflash()
            .args(["monitor", "--board", "uno", "--port", &sim.pty])
            .args(["--duration", "3"])
            .stdin(std::process::Stdio::null()),
        Duration::from_secs(30),
    );
    let (mon, mon_err) = text(&m);
    assert!(m.status.success(), "nixflash monitor: {mon_err}");
    mon
}

#[test]
fn uno_firmware_reads_its_region_from_program_memory_uploaded_through_the_bootloader() {
    let test = "uno_firmware_reads_its_region_from_program_memory_uploaded_through_the_bootloader";
    if let Some(why) = sim_missing() {
        return skip(test, &why);
    }
    if !on_path("avrdude") {
        return skip(test, "avrdude is not on PATH (apt install avrdude)");
    }
    let built = match build(Kind::Uno) {
        Ok(b) => b,
        Err(why) => return skip(test, &why),
    };
    let uno = board("uno");
    let (at, region, damaged) = regions(&uno, "desk-7");
    let elf = loadable(&built.elf);
    let end = elf
        .iter()
        .map(|(a, b)| *a as usize + b.len())
        .max()
        .unwrap();
    assert!(end <= at as usize, "the firmware ends at {end:#x}");
    let _serial = sim_lock();
    for (region, lines) in [
        (region, vec!["Hello from desk-7 on the Arduino Uno!"]),
        (damaged, vec![DAMAGED, "Hello from fw on the Arduino Uno!"]),
    ] {
        let mut chunks = elf.clone();
        chunks.push((at, region));
        let said = run_uno(&intel_hex(&chunks), "the Uno blinky with a settings region");
        let said: Vec<&str> = said.lines().map(|l| l.trim_end_matches('\r')).collect();
        assert!(
            said.windows(lines.len()).any(|w| w == lines.as_slice()),
            "{lines:?} not in what the firmware said: {said:?}"
        );
        assert!(
            !said
                .iter()
                .any(|l| l.starts_with("Hello from") && !lines.contains(l)),
            "{said:?}"
        );
    }
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
