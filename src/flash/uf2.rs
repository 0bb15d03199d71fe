//! UF2, the file format a boot drive takes (<https://github.com/microsoft/uf2>): ELF firmware
//! turned into 512-byte blocks, each carrying 256 bytes for one flash address, for the RP2 chips'
//! boot ROMs. nixflash's one ELF-to-UF2 converter: `flash` writes what it makes onto the drive.
//!
//! The bytes are those of the ELF's loadable segments at their load (physical) addresses, as the
//! chip must hold them: `.data`'s initial values sit in flash, where the start-up code copies them
//! from. Each 256-byte page the firmware touches is one block, the bytes it does not cover zero.
//! The RP2040's boot ROM erases a 4 KiB flash sector when the first block for it arrives, counting
//! by block number, so a sector the firmware touches gets a block for each of its pages (zeros),
//! up to the firmware's last page, as Raspberry Pi's elf2uf2 and picotool do.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use crate::board::{Family, Place};

/// The first magic number of every block ("UF2\n").
pub const MAGIC_START0: u32 = 0x0A32_4655;
/// The second.
pub const MAGIC_START1: u32 = 0x9E5D_5157;
/// The magic number at the end of every block.
pub const MAGIC_END: u32 = 0x0AB1_6F30;
/// The flag saying that the block's file-size field holds a family id.
pub const FLAG_FAMILY_ID: u32 = 0x0000_2000;
/// The bytes of flash one block carries.
pub const PAGE: u32 = 256;
/// A block's size in the file.
pub const BLOCK: usize = 512;
/// The flash sector the RP2040's boot ROM erases at once.
const SECTOR: u32 = 4096;

/// A UF2 file made from firmware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uf2 {
    pub bytes: Vec<u8>,
    /// How many blocks (256-byte pages) it has.
    pub blocks: u32,
    /// The first and one past the last flash address it writes.
    pub start: u32,
    pub end: u32,
}

/// Converts ELF firmware into a UF2 file for the chip `family_id` names. Every loadable byte must
/// go to flash, as the family's memory map says (a program loaded into RAM is not supported).
#[cfg(test)]
pub fn from_elf(elf: &[u8], family_id: u32, family: &Family) -> Result<Uf2> {
    from_runs(&crate::firmware::loadable(elf)?, None, family_id, family)
}

/// Converts the firmware's loadable bytes (`(address, bytes)` runs) into a UF2 file, with the
/// settings `region` (its address and bytes) as blocks of their own after the firmware's: the
/// firmware's blocks are the same whatever the region holds.
pub fn from_runs(
    runs: &[(u32, Vec<u8>)],
    region: Option<(u32, &[u8])>,
    family_id: u32,
    family: &Family,
) -> Result<Uf2> {
    let mut pages: BTreeMap<u32, [u8; PAGE as usize]> = BTreeMap::new();
    for (address, bytes) in runs {
        let address = *address;
        let end = u64::from(address) + bytes.len() as u64;
        if family.place(address.into()) != Place::Flash || family.place(end - 1) != Place::Flash {
            bail!(
                "the firmware has {} bytes to load at {address:#010x}, which is not flash: a UF2 \
                 file for the boot drive holds flash contents only",
                bytes.len()
            );
        }
        for (i, byte) in bytes.iter().enumerate() {
            let at = address + i as u32;
            let page = pages.entry(at - at % PAGE).or_insert([0; PAGE as usize]);
            page[(at % PAGE) as usize] = *byte;
        }
    }
    let Some((&last, _)) = pages.last_key_value() else {
        bail!("the firmware has no bytes to load");
    };
    // Every page of a touched sector, up to the last page.
    let sectors: Vec<u32> = pages.keys().map(|a| a - a % SECTOR).collect();
    for sector in sectors {
        for page in (sector..sector + SECTOR).step_by(PAGE as usize) {
            if page < last {
                pages.entry(page).or_insert([0; PAGE as usize]);
            }
        }
    }
    if let Some((at, bytes)) = region {
        for (i, byte) in bytes.iter().enumerate() {
            let at = at + i as u32;
            let page = pages.entry(at - at % PAGE).or_insert([0xFF; PAGE as usize]);
            page[(at % PAGE) as usize] = *byte;
        }
    }
    let last = *pages.keys().next_back().expect("pages is not empty");
    let count = u32::try_from(pages.len()).context("firmware too large for UF2")?;
    let start = *pages.keys().next().expect("pages is not empty");
    let mut bytes = Vec::with_capacity(pages.len() * BLOCK);
    for (number, (address, data)) in pages.iter().enumerate() {
        let words = [
            MAGIC_START0,
            MAGIC_START1,
            FLAG_FAMILY_ID,
            *address,
            PAGE,
            number as u32,
            count,
            family_id,
        ];
        for w in words {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len() + 476 - PAGE as usize, 0);
        bytes.extend_from_slice(&MAGIC_END.to_le_bytes());
    }
    Ok(Uf2 {
        bytes,
        blocks: count,
        start,
        end: last + PAGE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF32 (ARM) with one PT_LOAD segment of `data` at `paddr`.
    fn elf(paddr: u32, data: &[u8]) -> Vec<u8> {
        let mut e = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let u16s = |e: &mut Vec<u8>, v: &[u16]| v.iter().for_each(|x| e.extend(x.to_le_bytes()));
        let u32s = |e: &mut Vec<u8>, v: &[u32]| v.iter().for_each(|x| e.extend(x.to_le_bytes()));
        u16s(&mut e, &[2, 40]);
        u32s(&mut e, &[1, paddr, 52, 0, 0x0500_0200]);
        u16s(&mut e, &[52, 32, 1, 40, 0, 0]);
        // p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align
        let len = data.len() as u32;
        u32s(&mut e, &[1, 84, paddr, paddr, len, len, 5, 4]);
        e.extend_from_slice(data);
        e
    }

    fn word(uf2: &[u8], block: usize, i: usize) -> u32 {
        let at = block * BLOCK + i * 4;
        u32::from_le_bytes(uf2[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn blocks_pad_touched_sectors_and_carry_the_family() {
        let db = crate::board::Database::builtin().unwrap();
        let family = db.get("pico").unwrap().family();
        // 300 bytes at the start of flash and 10 at 0x1000_1010 (the next sector).
        let mut data = vec![0xAA; 300];
        data.resize(0x1010, 0);
        data.extend([0xBB; 10]);
        let uf2 = from_elf(&elf(0x1000_0000, &data), 0xe48b_ff56, family).unwrap();
        // Sector 0: all 16 pages (the last page is later); sector 1: pages 0x1000_1000 only.
        assert_eq!(uf2.blocks, 17);
        assert_eq!((uf2.start, uf2.end), (0x1000_0000, 0x1000_1100));
        assert_eq!(uf2.bytes.len(), 17 * BLOCK);
        for b in 0..17 {
            assert_eq!(word(&uf2.bytes, b, 0), MAGIC_START0);
            assert_eq!(word(&uf2.bytes, b, 1), MAGIC_START1);
            assert_eq!(word(&uf2.bytes, b, 2), FLAG_FAMILY_ID);
            assert_eq!(word(&uf2.bytes, b, 4), 256);
            assert_eq!(word(&uf2.bytes, b, 5), b as u32);
            assert_eq!(word(&uf2.bytes, b, 6), 17);
            assert_eq!(word(&uf2.bytes, b, 7), 0xe48b_ff56);
            assert_eq!(word(&uf2.bytes, b, 127), MAGIC_END);
        }
        assert_eq!(word(&uf2.bytes, 1, 3), 0x1000_0100);
        assert_eq!(uf2.bytes[BLOCK + 32 + 43], 0xAA);
        assert_eq!(uf2.bytes[BLOCK + 32 + 44], 0);
        assert_eq!(word(&uf2.bytes, 16, 3), 0x1000_1000);
        assert_eq!(uf2.bytes[16 * BLOCK + 32 + 0x10], 0xBB);
    }

    #[test]
    fn ram_segments_and_empty_firmware_are_refused() {
        let db = crate::board::Database::builtin().unwrap();
        let family = db.get("pico").unwrap().family();
        let e = from_elf(&elf(0x2000_0000, &[1, 2, 3]), 1, family).unwrap_err();
        assert!(
            e.to_string().contains("0x20000000, which is not flash"),
            "{e}"
        );
        let e = from_elf(&elf(0x1000_0000, &[]), 1, family).unwrap_err();
        assert!(e.to_string().contains("no bytes to load"), "{e}");
        assert!(from_elf(b"not an elf", 1, family).is_err());
    }
}
