//! A Pico's settings for real: the rendered Pico project compiled with the real compiler,
//! `nixflash image --set name=desk-7` writes a UF2 file whose firmware blocks are those of the
//! plain build and whose last sector holds the region; that file run in rp2040js greets with the
//! name. `flash --set` copies the same file onto a folder made to look like the boot drive. A
//! region whose payload was changed makes the firmware say so, and greet as without settings.

use std::path::Path;
use std::time::Duration;

use crate::common::firmware::{build, Kind};
use crate::common::process::{run_bounded, text};
use crate::common::{self, rp2040, skip};
use crate::rp2::{boot_drive, read_uf2, Block, RP2040};

/// The Pico's settings sector (boards/pico.toml `memory.settings`).
const SECTOR: u32 = 0x101F_F000;

/// `nixflash image --no-build --elf <elf> -o <out>` and `args`, in `project`.
fn image(project: &Path, elf: &Path, out: &Path, args: &[&str]) -> String {
    let o = run_bounded(
        common::nixflash()
            .current_dir(project)
            .args(["image", "--no-build", "--elf"])
            .arg(elf)
            .arg("-o")
            .arg(out)
            .args(args),
        Duration::from_secs(60),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    err
}

/// The UART lines of a run of `uf2` in rp2040js for `millis` simulated milliseconds.
fn lines(test: &str, uf2: &Path, millis: u32) -> Option<Vec<String>> {
    let events = rp2040::run(test, uf2, millis)?;
    Some(
        events
            .iter()
            .filter_map(|e| e["line"].as_str().map(str::to_string))
            .collect(),
    )
}

#[test]
fn a_pico_image_with_settings_greets_with_its_name_in_rp2040js() {
    let test = "a_pico_image_with_settings_greets_with_its_name_in_rp2040js";
    let built = match build(Kind::Pico) {
        Ok(b) => b,
        Err(why) => return skip(test, &why),
    };
    let (project, elf) = (built.project, built.elf);
    let tmp = tempfile::tempdir().unwrap();
    let (plain, named) = (tmp.path().join("plain.uf2"), tmp.path().join("named.uf2"));
    let err = image(&project, &elf, &plain, &[]);
    assert!(err.contains("(UF2, "), "{err}");
    let err = image(&project, &elf, &named, &["--set", "name=desk-7"]);
    assert!(
        err.contains(
            "and settings (name (--set)) at 0x101ff000; its SHA-256 above includes the settings)"
        ),
        "{err}"
    );
    let plain_blocks = read_uf2(&std::fs::read(&plain).unwrap(), RP2040);
    let named_bytes = std::fs::read(&named).unwrap();
    let named_blocks = read_uf2(&named_bytes, RP2040);
    // The firmware's blocks are the plain build's; then 16 blocks, the whole last sector.
    let (firmware, region): (Vec<&Block>, Vec<&Block>) =
        named_blocks.iter().partition(|b| b.address < SECTOR);
    assert_eq!(firmware.len(), plain_blocks.len());
    for (a, b) in firmware.iter().zip(&plain_blocks) {
        assert_eq!((a.address, &a.data), (b.address, &b.data));
    }
    let addresses: Vec<u32> = region.iter().map(|b| b.address).collect();
    assert_eq!(
        addresses,
        (0..16).map(|i| SECTOR + 256 * i).collect::<Vec<_>>()
    );
    let bytes: Vec<u8> = region.iter().flat_map(|b| b.data.clone()).collect();
    let decoded = nixflash::settings::decode(&bytes).unwrap();
    assert_eq!(decoded, [("name".to_string(), "desk-7".to_string())]);

    // flash --set writes the same file onto the boot drive.
    let drive = boot_drive(tmp.path(), "RPI-RP2", "RPI-RP2");
    let o = run_bounded(
        common::nixflash()
            .current_dir(&project)
            .env("PATH", "/usr/bin:/bin")
            .args(["flash", "--elf"])
            .arg(&elf)
            .arg("--port")
            .arg(&drive)
            .args(["--set", "name=desk-7"]),
        Duration::from_secs(60),
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        err.contains("Settings name (--set) at 0x101ff000, 16 UF2 blocks"),
        "{err}"
    );
    assert!(std::fs::read(drive.join("fw.uf2")).unwrap() == named_bytes);

    // The named image, run: it greets with the name, and blinks as the plain one does.
    let Some(events) = rp2040::run(test, &named, 2600) else {
        return;
    };
    rp2040::blinks(&events, "Hello from desk-7 on the Raspberry Pi Pico!");

    // A payload byte changed after the checksum was computed: the firmware says so.
    let mut damaged = named_bytes.clone();
    let block = named_blocks.len() - 16;
    // The payload starts 12 bytes into the region (`name=desk-7`'s `d` is its 6th byte).
    damaged[block * 512 + 32 + 12 + 5] ^= 0x20;
    let file = tmp.path().join("damaged.uf2");
    std::fs::write(&file, &damaged).unwrap();
    let Some(lines) = lines(test, &file, 300) else {
        return;
    };
    assert!(
        lines.first().is_some_and(|l| l.contains("damaged")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"Hello from fw on the Raspberry Pi Pico!".to_string()),
        "{lines:?}"
    );
}
