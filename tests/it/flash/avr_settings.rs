//! An AVR board's settings, on a simulated Uno running Arduino's bootloader: written with the
//! firmware by `flash --set` (real ravedude), kept when the firmware alone is flashed again, and
//! a damaged region (an image whose payload byte was changed, uploaded with avrdude as any Intel
//! HEX file is) said by the firmware, which then greets and blinks as without settings.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::firmware;
use crate::common::process::{run_bounded, text};
use crate::common::sim::{ravedude_missing, sim_lock, sim_missing, SimUno};
use crate::common::{measured, nixflash, skip};

/// `nixflash flash --no-build --elf <fw> --board uno --port <pty>` and `args`, in `dir`.
fn flash(dir: &std::path::Path, pty: &str, args: &[&str]) -> String {
    let o = run_bounded(
        nixflash()
            .args(["flash", "--no-build", "--board", "uno", "--elf"])
            .arg(&firmware().elf)
            .args(["--port", pty])
            .args(args)
            .current_dir(dir),
        Duration::from_secs(120),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{}\n{out}\n{err}", o.status);
    err
}

/// What nixflash's monitor shows of the simulated Uno at `pty` in 3 s (opening the port resets
/// the board, which starts the firmware again).
fn console(pty: &str) -> String {
    let m = run_bounded(
        nixflash()
            .args([
                "monitor",
                "--board",
                "uno",
                "--port",
                pty,
                "--duration",
                "3",
            ])
            .stdin(Stdio::null()),
        Duration::from_secs(30),
    );
    let (out, err) = text(&m);
    assert!(m.status.success(), "nixflash monitor failed:\n{err}");
    out
}

/// Changes the byte at flash address `at` of an Intel HEX file, fixing its record's checksum.
fn change_byte(hex: &str, at: u32) -> String {
    let mut out = String::new();
    let mut upper = 0u32;
    for line in hex.lines() {
        let mut b: Vec<u8> = (1..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
            .collect();
        let start = upper + u32::from(u16::from_be_bytes([b[1], b[2]]));
        match b[3] {
            4 => upper = u32::from(u16::from_be_bytes([b[4], b[5]])) << 16,
            0 if (start..start + u32::from(b[0])).contains(&at) => {
                b[4 + (at - start) as usize] ^= 0x20;
                let n = b.len() - 1;
                b[n] = b[..n]
                    .iter()
                    .fold(0u8, |s, x| s.wrapping_add(*x))
                    .wrapping_neg();
            }
            _ => {}
        }
        out.push(':');
        out.extend(b.iter().map(|x| format!("{x:02X}")));
        out.push('\n');
    }
    out
}

#[test]
fn avr_settings_survive_a_reflash_and_a_damaged_region_is_said() {
    let name = "avr_settings_survive_a_reflash_and_a_damaged_region_is_said";
    if let Some(why) = sim_missing().or_else(ravedude_missing) {
        return skip(name, &why);
    }
    let fw = firmware();
    let _serial = sim_lock();
    let started = Instant::now();
    let sim = SimUno::start();
    let dir = tempfile::tempdir().unwrap();

    let err = flash(dir.path(), &sim.pty, &["--set", "name=kept"]);
    assert!(
        err.contains("Settings name (--set) at 0x7600, in a "),
        "{err}"
    );
    let shown = console(&sim.pty);
    assert!(
        shown.contains("Hello from kept on the Arduino Uno!"),
        "{shown:?}"
    );

    // The firmware alone again: ravedude's avrdude writes the firmware's pages only (-D, no chip
    // erase), so the region below the bootloader keeps what it had.
    sim.reset();
    let err = flash(dir.path(), &sim.pty, &[]);
    assert!(!err.contains("Settings"), "{err}");
    let shown = console(&sim.pty);
    assert!(
        shown.contains("Hello from kept on the Arduino Uno!"),
        "{shown:?}"
    );

    // An image whose payload was changed after its checksum was computed.
    let hex = dir.path().join("desk.hex");
    let o = run_bounded(
        nixflash()
            .args(["image", "--no-build", "--board", "uno", "--elf"])
            .arg(&fw.elf)
            .args(["--set", "name=desk"])
            .arg("-o")
            .arg(&hex)
            .current_dir(dir.path()),
        Duration::from_secs(30),
    );
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("(Intel HEX, "), "{err}");
    let damaged = dir.path().join("damaged.hex");
    // The payload starts 12 bytes into the region: `name=desk`'s `d`.
    std::fs::write(
        &damaged,
        change_byte(&std::fs::read_to_string(&hex).unwrap(), 0x7600 + 17),
    )
    .unwrap();
    sim.reset();
    let o = run_bounded(
        Command::new("avrdude")
            .args([
                "-p",
                "atmega328p",
                "-c",
                "arduino",
                "-b",
                "57600",
                "-D",
                "-P",
                &sim.pty,
            ])
            .arg(format!("-Uflash:w:{}:i", damaged.display())),
        Duration::from_secs(60),
    );
    let (_, err) = text(&o);
    assert!(o.status.success(), "avrdude failed:\n{err}");
    let shown = console(&sim.pty);
    assert!(
        shown.contains("damaged"),
        "the firmware did not say so: {shown:?}"
    );
    assert!(shown.contains(&fw.greeting), "{shown:?}");
    assert!(!shown.contains("Hello from desk"), "{shown:?}");
    measured(&format!("{name}: {:.1} s", started.elapsed().as_secs_f64()));
}
