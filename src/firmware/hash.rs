//! SHA-256 of what a build made: the ELF file, and the bytes that go to the board ([`Hashes`]).
//!
//! The bytes that go to the board are the firmware's flash image, settings excluded, as the
//! family's `firmware-image` defines it: the ELF's loadable bytes in flash, laid out from the
//! lowest address with the gaps 0xFF ([`flash_bytes`], what `objcopy -O binary --gap-fill 0xff`
//! writes), or the app image the flasher writes (espflash's `save-image`): `crate::flash::hash`
//! makes that one, and finds the flasher for it.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::board::family::{Family, Place};

/// The SHA-256 of `bytes`, as 64 lowercase hex digits (as `sha256sum` prints it).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The SHA-256 of the file at `path`, as [`sha256_hex`].
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(sha256_hex(&bytes))
}

/// A line as `sha256sum` prints it: `<hash>  <name>`. A name holding a backslash, a newline or a
/// carriage return is escaped as GNU `sha256sum` escapes it (`\\`, `\n`, `\r`), and the line
/// then starts with a backslash, so `sha256sum -c` reads it back.
pub fn sum_line(hash: &str, name: &str) -> String {
    if !name.contains(['\\', '\n', '\r']) {
        return format!("{hash}  {name}");
    }
    let mut escaped = String::with_capacity(name.len() + 2);
    for c in name.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            c => escaped.push(c),
        }
    }
    format!("\\{hash}  {escaped}")
}

/// The hashes of a firmware: its ELF file's, and its flash image's (JSON: `"sha256": {"elf",
/// "image", "image_size", "image_is"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hashes {
    /// The SHA-256 of the ELF file.
    pub elf: String,
    /// The flash image's, unless it could not be made (the reason was reported as a warning).
    #[serde(flatten)]
    pub image: Option<ImageHash>,
}

/// The SHA-256 of the bytes that go to the board, and what they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageHash {
    #[serde(rename = "image")]
    pub sha256: String,
    /// Its length in bytes.
    #[serde(rename = "image_size")]
    pub size: u64,
    /// What it is, and how to make the same bytes: "the ELF's flash bytes from 0x0 (`objcopy -O
    /// binary --gap-fill 0xff`)".
    #[serde(rename = "image_is")]
    pub is: String,
}

/// The firmware's loadable bytes in the family's flash (`memory-map`'s `flash` ranges, by
/// physical address) as one run from the lowest address, gaps filled with 0xFF: what
/// `objcopy -O binary --gap-fill 0xff` writes of them. Returns the start address and the bytes.
pub fn flash_bytes(elf: &[u8], family: &Family) -> Result<(u32, Vec<u8>)> {
    let mut runs: Vec<(u32, Vec<u8>)> = super::loadable(elf)?
        .into_iter()
        .filter(|(at, _)| family.place(u64::from(*at)) == Place::Flash)
        .collect();
    runs.sort_by_key(|(at, _)| *at);
    let Some(start) = runs.first().map(|(at, _)| *at) else {
        bail!("the ELF has no bytes to load into flash");
    };
    let end = runs
        .iter()
        .map(|(at, b)| u64::from(*at) + b.len() as u64)
        .max()
        .unwrap_or(u64::from(start));
    let len = usize::try_from(end - u64::from(start)).context("the flash image is too large")?;
    if len > 1 << 30 {
        bail!("the ELF's flash bytes span {len} bytes from {start:#x}: more than any flash holds");
    }
    let mut out = vec![0xFF; len];
    for (at, bytes) in &runs {
        let from = (at - start) as usize;
        out[from..from + bytes.len()].copy_from_slice(bytes);
    }
    Ok((start, out))
}

impl ImageHash {
    /// The hash of `bytes`, which are `is`.
    pub fn of(bytes: &[u8], is: String) -> ImageHash {
        ImageHash {
            sha256: sha256_hex(bytes),
            size: bytes.len() as u64,
            is,
        }
    }
}

/// The hash of the flash image of the ELF `data` of a `flash-segments` family ([`flash_bytes`]),
/// saying what it holds.
pub fn flash_image(data: &[u8], family: &Family) -> Result<ImageHash> {
    let (start, bytes) = flash_bytes(data, family)?;
    let outside: usize = super::loadable(data)?
        .iter()
        .filter(|(at, _)| family.place(u64::from(*at)) != Place::Flash)
        .map(|(_, b)| b.len())
        .sum();
    let left_out = match outside {
        0 => String::new(),
        n => format!(", {n} bytes outside flash left out"),
    };
    Ok(ImageHash::of(
        &bytes,
        format!(
            "the ELF's flash bytes from {start:#x}, gaps 0xff{left_out} (`objcopy -O binary \
             --gap-fill 0xff`)"
        ),
    ))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    #[test]
    fn hex_digest_is_sha256sums() {
        // `printf abc | sha256sum`
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), sha256_hex(b"abc"));
        assert!(sha256_file(&dir.path().join("missing")).is_err());
    }

    /// An AVR ELF with a gap in flash and bytes for the EEPROM (0x810000), as avr-gcc puts them.
    pub fn avr_elf() -> Vec<u8> {
        crate::flash::segments::Segments::of_runs(
            vec![
                (0, vec![1, 2, 3, 4]),
                (8, vec![5, 6]),
                (0x81_0000, vec![0xEE; 3]),
            ],
            83,
        )
        .to_elf()
        .unwrap()
    }

    #[test]
    fn the_flash_image_fills_gaps_with_ff_and_leaves_out_what_is_not_flash() {
        let db = crate::board::Database::builtin().unwrap();
        let uno = db.get("uno").unwrap();
        let (start, bytes) = flash_bytes(&avr_elf(), uno.family()).unwrap();
        assert_eq!(start, 0);
        assert_eq!(bytes, [1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF, 5, 6]);
        // From the lowest address, not from 0 (the RP2's flash is at 0x1000_0000).
        let pico = db.get("pico").unwrap();
        let elf = crate::flash::segments::Segments::of_runs(
            vec![(0x1000_0100, vec![7; 4]), (0x1000_0000, vec![9; 2])],
            40,
        )
        .to_elf()
        .unwrap();
        let (start, bytes) = flash_bytes(&elf, pico.family()).unwrap();
        assert_eq!(start, 0x1000_0000);
        assert_eq!(bytes.len(), 0x104);
        assert_eq!(
            (&bytes[..3], &bytes[0x100..]),
            (&[9, 9, 0xFF][..], &[7; 4][..])
        );
        // Nothing in flash: no image.
        let ram = crate::flash::segments::Segments::of_runs(vec![(0x2000_0000, vec![1])], 40);
        assert!(flash_bytes(&ram.to_elf().unwrap(), pico.family()).is_err());
    }
}
