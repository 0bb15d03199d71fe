//! The bytes a board's flash receives, as `(address, bytes)` runs: the firmware ELF's loadable
//! segments at their load addresses, and the settings region at the board's `memory.settings`.
//! From them nixflash writes what families without an image-making flasher take: an Intel HEX
//! file (`nixflash image` for AVR boards), a UF2 file ([`super::uf2`], RP2 boards), and an ELF
//! that carries the region as one more loadable segment, which ravedude uploads as it uploads any
//! firmware (it takes ELF files only).

use std::fmt::Write as _;

use anyhow::{bail, Context as _, Result};

use crate::error::{Failure, Kind};

/// Flash contents: runs of bytes, each at its address, in address order, none overlapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segments {
    pub runs: Vec<(u32, Vec<u8>)>,
    /// The ELF's machine and flags, for [`Segments::to_elf`].
    machine: u16,
    flags: u32,
    entry: u32,
}

impl Segments {
    /// The loadable bytes of the 32-bit little-endian ELF `elf`.
    pub fn of_elf(elf: &[u8]) -> Result<Segments> {
        let mut runs = crate::firmware::loadable(elf)?;
        runs.sort_by_key(|(a, _)| *a);
        let le16 = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]);
        let le32 = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().expect("4 bytes"));
        // loadable() has checked that this is an ELF32 file, whose header is 52 bytes.
        Ok(Segments {
            runs,
            machine: le16(18),
            entry: le32(24),
            flags: le32(36),
        })
    }

    /// Runs of a firmware of ELF machine `machine`, for tests that write ELF files.
    #[cfg(test)]
    pub fn of_runs(runs: Vec<(u32, Vec<u8>)>, machine: u16) -> Segments {
        Segments {
            runs,
            machine,
            flags: 0,
            entry: 0,
        }
    }

    /// Adds the settings `region` at `at`: refused when the firmware's bytes reach into it.
    pub fn add_region(&mut self, at: u32, region: &[u8], board: &str) -> Result<()> {
        let end = at + region.len() as u32;
        if let Some((a, b)) = self
            .runs
            .iter()
            .find(|(a, b)| *a < end && a + b.len() as u32 > at)
        {
            return Err(Failure::new(
                Kind::Setting,
                format!(
                    "the firmware's bytes at {a:#x}..{:#x} reach into the {board}'s settings \
                     region at {at:#x}..{end:#x}: it is too large to keep settings",
                    a + b.len() as u32
                ),
            )
            .hint(
                "nothing was written or flashed; make the firmware smaller (`nixflash build` \
                 reports its size), or flash it without settings",
            )
            .into());
        }
        let i = self.runs.partition_point(|(a, _)| *a < at);
        self.runs.insert(i, (at, region.to_vec()));
        Ok(())
    }

    /// The contents as an Intel HEX file: 16-byte data records, an extended linear address
    /// record wherever the upper 16 bits of the address change, the end-of-file record.
    pub fn to_ihex(&self) -> String {
        let mut out = String::new();
        let mut upper = 0u32;
        for (address, bytes) in &self.runs {
            for (i, chunk) in bytes.chunks(16).enumerate() {
                let at = address + 16 * i as u32;
                // A record must not cross a 64 KiB boundary: split it there.
                let split = (0x1_0000 - (at & 0xFFFF) as usize).min(chunk.len());
                for (at, part) in [(at, &chunk[..split]), (at + split as u32, &chunk[split..])] {
                    if part.is_empty() {
                        continue;
                    }
                    if at >> 16 != upper {
                        upper = at >> 16;
                        record(&mut out, 0, 4, &(upper as u16).to_be_bytes());
                    }
                    record(&mut out, at as u16, 0, part);
                }
            }
        }
        record(&mut out, 0, 1, &[]);
        out
    }

    /// The contents as an ELF file of the firmware's machine: a loadable segment and its section
    /// for each run, at its address, as avrdude reads an ELF (the section whose file offset
    /// starts a PT_LOAD segment is written at the segment's physical address).
    pub fn to_elf(&self) -> Result<Vec<u8>> {
        const EHDR: usize = 52;
        const PHDR: usize = 32;
        const SHDR: usize = 40;
        let n = self.runs.len();
        if n == 0 {
            bail!("the firmware has no bytes to load");
        }
        // Section names: "", ".shstrtab", then ".load0", ".load1", ...
        let mut names = b"\0.shstrtab\0".to_vec();
        let mut name_at = Vec::new();
        for i in 0..n {
            name_at.push(names.len() as u32);
            names.extend(format!(".load{i}\0").bytes());
        }
        let data_at = EHDR + n * PHDR;
        let mut offsets = Vec::new();
        let mut at = data_at;
        for (_, b) in &self.runs {
            offsets.push(at);
            at += b.len();
        }
        let names_at = at;
        let shoff = (names_at + names.len()).div_ceil(4) * 4;
        let shnum = n + 2;
        let mut e = Vec::with_capacity(shoff + shnum * SHDR);
        e.extend([0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let u16s = |e: &mut Vec<u8>, v: &[u16]| v.iter().for_each(|x| e.extend(x.to_le_bytes()));
        let u32s = |e: &mut Vec<u8>, v: &[u32]| v.iter().for_each(|x| e.extend(x.to_le_bytes()));
        u16s(&mut e, &[2, self.machine]);
        let size = |x: usize| u32::try_from(x).context("firmware too large for an ELF32 file");
        u32s(
            &mut e,
            &[1, self.entry, EHDR as u32, size(shoff)?, self.flags],
        );
        u16s(
            &mut e,
            &[
                EHDR as u16,
                PHDR as u16,
                n as u16,
                SHDR as u16,
                shnum as u16,
                1,
            ],
        );
        for ((address, b), off) in self.runs.iter().zip(&offsets) {
            let len = size(b.len())?;
            // p_type PT_LOAD, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags R+X, p_align
            u32s(
                &mut e,
                &[1, size(*off)?, *address, *address, len, len, 5, 1],
            );
        }
        for (_, b) in &self.runs {
            e.extend_from_slice(b);
        }
        e.extend_from_slice(&names);
        e.resize(shoff, 0);
        // The null section, the names, then one PROGBITS section (alloc + exec) per run.
        e.extend([0; SHDR]);
        u32s(
            &mut e,
            &[1, 3, 0, 0, size(names_at)?, size(names.len())?, 0, 0, 1, 0],
        );
        for (((address, b), off), name) in self.runs.iter().zip(&offsets).zip(&name_at) {
            let len = size(b.len())?;
            u32s(
                &mut e,
                &[*name, 1, 6, *address, size(*off)?, len, 0, 0, 1, 0],
            );
        }
        Ok(e)
    }
}

/// Appends one Intel HEX record: `:LLAAAATT<data>CC`.
fn record(out: &mut String, address: u16, kind: u8, data: &[u8]) {
    let [hi, lo] = address.to_be_bytes();
    let mut sum = (data.len() as u8)
        .wrapping_add(hi)
        .wrapping_add(lo)
        .wrapping_add(kind);
    let _ = write!(out, ":{:02X}{address:04X}{kind:02X}", data.len());
    for b in data {
        sum = sum.wrapping_add(*b);
        let _ = write!(out, "{b:02X}");
    }
    let _ = writeln!(out, "{:02X}", sum.wrapping_neg());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(runs: Vec<(u32, Vec<u8>)>) -> Segments {
        Segments {
            runs,
            machine: 83,
            flags: 5,
            entry: 0,
        }
    }

    /// The bytes an Intel HEX file holds, by address, read back record by record (checksums
    /// checked).
    fn read_ihex(text: &str) -> Vec<(u32, u8)> {
        let mut upper = 0;
        let mut out = Vec::new();
        for line in text.lines() {
            let bytes: Vec<u8> = (1..line.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(
                bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b)),
                0,
                "{line}"
            );
            let (len, at, kind) = (
                bytes[0] as usize,
                u16::from_be_bytes([bytes[1], bytes[2]]),
                bytes[3],
            );
            let data = &bytes[4..4 + len];
            match kind {
                0 => out.extend(
                    data.iter()
                        .enumerate()
                        .map(|(i, b)| (upper + u32::from(at) + i as u32, *b)),
                ),
                4 => upper = u32::from(u16::from_be_bytes([data[0], data[1]])) << 16,
                1 => break,
                k => panic!("record type {k}"),
            }
        }
        out
    }

    #[test]
    fn intel_hex_holds_every_byte_at_its_address_across_64k() {
        let s = segments(vec![
            (0, vec![0x0C, 0x94, 0x34, 0x00]),
            (0xFFF8, (0..20).collect()),
        ]);
        let hex = s.to_ihex();
        assert!(hex.starts_with(":040000000C94340028\n"), "{hex}");
        assert!(hex.ends_with(":00000001FF\n"), "{hex}");
        assert!(hex.contains(":020000040001F9\n"), "{hex}");
        let mut want = vec![(0, 0x0C), (1, 0x94), (2, 0x34), (3, 0)];
        want.extend((0..20).map(|i| (0xFFF8 + i, i as u8)));
        assert_eq!(read_ihex(&hex), want);
    }

    #[test]
    fn the_region_goes_in_order_and_may_not_overlap_the_firmware() {
        let mut s = segments(vec![(0, vec![1; 100]), (0x7700, vec![2; 4])]);
        s.add_region(0x7600, &[0xAA; 16], "Arduino Uno").unwrap();
        assert_eq!(
            s.runs.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            [0, 0x7600, 0x7700]
        );
        let mut big = segments(vec![(0, vec![1; 0x7610])]);
        let e = big
            .add_region(0x7600, &[0xAA; 512], "Arduino Uno")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("reach into the Arduino Uno's settings region at 0x7600..0x7800"),
            "{e}"
        );
    }

    #[test]
    fn a_firmware_that_reaches_the_settings_region_is_found() {
        let db = crate::board::Database::builtin().unwrap();
        let uno = db.get("uno").unwrap();
        let reaches = |len: usize| {
            let elf = segments(vec![(0, vec![1; len])]).to_elf().unwrap();
            crate::firmware::size::reaches_settings(&elf, &uno.memory)
        };
        assert_eq!(reaches(0x7600), None);
        assert_eq!(reaches(0x7601), Some(0x7601));
        let esp = db.get("esp32c3").unwrap();
        let elf = segments(vec![(0, vec![1; 0x8000])]).to_elf().unwrap();
        assert_eq!(
            crate::firmware::size::reaches_settings(&elf, &esp.memory),
            None
        );
    }

    #[test]
    fn the_elf_it_writes_reads_back_as_the_same_runs() {
        let s = segments(vec![(0, vec![1, 2, 3]), (0x7600, vec![0xAA; 8])]);
        let elf = s.to_elf().unwrap();
        let back = Segments::of_elf(&elf).unwrap();
        assert_eq!(back, s);
        let file = object::File::parse(&*elf).unwrap();
        use object::{Object, ObjectSection};
        let sections: Vec<_> = file
            .sections()
            .filter(|s| s.kind() == object::SectionKind::Text)
            .map(|s| (s.address(), s.data().unwrap().to_vec()))
            .collect();
        assert_eq!(sections, [(0, vec![1, 2, 3]), (0x7600, vec![0xAA; 8])]);
    }
}
