//! The firmware file: what nixflash reads from an ELF, for every command that takes one. Its
//! processor ([`machine`], checked against the board with [`check`]), its chip and board
//! ([`chip`]), its sections' sizes against the board's memory ([`size`]); for the monitor, its
//! code addresses' functions and source lines ([`symbols`]) and its defmt table ([`defmt`]); for
//! the simulator, a copy with one more section ([`section`]); for images, the bytes it loads
//! into flash ([`loadable`]); the SHA-256 of what was built ([`hash`]). The ELF is read with the `object`
//! crate (and gimli, addr2line and defmt-decoder).

pub mod against;
pub mod chip;
pub mod compare;
pub mod defmt;
pub mod hash;
pub mod section;
pub mod size;
pub mod symbols;

use std::path::Path;

use anyhow::{Context, Result};

use crate::board::Board;
use crate::error::{Failure, Kind};

pub use chip::{avr_device, board_for};

/// The `e_machine` of an ELF file's header, read with `object`.
pub fn machine(data: &[u8]) -> Option<u16> {
    use object::read::elf::FileHeader;
    match object::FileKind::parse(data).ok()? {
        object::FileKind::Elf32 => {
            let h = object::elf::FileHeader32::<object::Endianness>::parse(data).ok()?;
            Some(h.e_machine(h.endian().ok()?))
        }
        object::FileKind::Elf64 => {
            let h = object::elf::FileHeader64::<object::Endianness>::parse(data).ok()?;
            Some(h.e_machine(h.endian().ok()?))
        }
        _ => None,
    }
}

/// The loadable bytes of an ELF: `(load address, bytes)` of each segment with bytes in the file.
pub fn loadable(elf: &[u8]) -> Result<Vec<(u32, Vec<u8>)>> {
    use object::elf::{FileHeader32, PT_LOAD};
    use object::read::elf::{FileHeader, ProgramHeader};
    let header = FileHeader32::<object::Endianness>::parse(elf)
        .context("not a 32-bit ELF file (the firmware of every family is one)")?;
    let endian = header.endian().context("an ELF of unknown byte order")?;
    let mut out = Vec::new();
    for ph in header
        .program_headers(endian, elf)
        .context("the ELF's program headers cannot be read")?
    {
        if ph.p_type(endian) != PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let bytes = ph
            .data(endian, elf)
            .map_err(|()| anyhow::anyhow!("a segment of the ELF lies outside the file"))?;
        out.push((ph.p_paddr(endian), bytes.to_vec()));
    }
    Ok(out)
}

/// `data` parsed, if it is an ELF file.
pub fn parse(data: &[u8]) -> Option<object::File<'_>> {
    object::File::parse(data)
        .ok()
        .filter(|f| f.format() == object::BinaryFormat::Elf)
}

/// Checks that `elf` is an ELF for the board's processor (the family's ELF machine).
pub fn check(board: &Board, elf: &Path) -> Result<()> {
    let data = std::fs::read(elf)
        .with_context(|| format!("cannot read the firmware {}", elf.display()))?;
    let machine = machine(&data).ok_or_else(|| {
        Failure::new(
            Kind::NotFirmware,
            format!("{} is not an ELF file", elf.display()),
        )
        .hint(
            "flash the .elf the build makes (result/bin/<name>.elf, or \
             target/<target>/release/<name> with cargo)",
        )
    })?;
    let family = board.family();
    if machine != family.elf_machine {
        let what = family.machine_name();
        return Err(Failure::new(
            Kind::NotFirmware,
            format!(
            "{} is not {what} firmware (ELF machine {machine}), but the {} needs {what} firmware",
            elf.display(),
            board.name
        ),
        )
        .hint(format!(
            "is it built for the right board? This project is for `{}`",
            board.id
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Database;

    #[test]
    fn elf_machine_must_match_the_board() {
        let db = Database::builtin().unwrap();
        let uno = db.get("uno").unwrap();
        let c3 = db.get("esp32c3").unwrap();
        let dir = tempfile::tempdir().unwrap();
        // A minimal ELF32 header for AVR (e_machine 83).
        let mut avr = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0];
        avr.extend([0; 8]);
        avr.extend([2, 0, 83, 0, 1, 0, 0, 0]);
        avr.extend([0; 12]); // entry, program and section header offsets
        avr.extend([0, 0, 0, 0, 52, 0, 32, 0, 0, 0, 40, 0, 0, 0, 0, 0]);
        let p = dir.path().join("fw.elf");
        std::fs::write(&p, &avr).unwrap();
        assert_eq!(machine(&avr), Some(83));
        check(uno, &p).unwrap();
        let e = format!("{:#}", check(c3, &p).unwrap_err());
        assert!(e.contains("not RISC-V firmware (ELF machine 83)"), "{e}");
        std::fs::write(&p, b"#!/bin/sh\necho not an elf\n").unwrap();
        let e = format!("{:#}", check(uno, &p).unwrap_err());
        assert!(e.contains("is not an ELF file"), "{e}");
    }
}
