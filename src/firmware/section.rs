//! Copies of an ELF with its sections changed: one more section, which is how simavr is told from
//! the firmware file what to trace (its `.mmcu` section, written by [`crate::sim`]); a section
//! table hidden, which is how probe-rs is kept from decoding the defmt frames the monitor decodes
//! (see [`crate::monitor::rtt`]).

use anyhow::{bail, Context, Result};

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    Ok(u16::from_le_bytes(
        b.get(at..at + 2).context("truncated ELF")?.try_into()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(
        b.get(at..at + 4).context("truncated ELF")?.try_into()?,
    ))
}

/// The section headers of a little-endian ELF32 file: where they are, how many, which holds the
/// section names, and where the names are.
struct Headers {
    shoff: usize,
    shnum: usize,
    shstrndx: usize,
    names_off: usize,
    names_size: usize,
}

fn headers(elf: &[u8]) -> Result<Headers> {
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 1, 1][..]) {
        bail!("not a little-endian 32-bit ELF file");
    }
    let shoff = u32_at(elf, 0x20)? as usize;
    let shentsize = u16_at(elf, 0x2e)? as usize;
    let shnum = u16_at(elf, 0x30)? as usize;
    let shstrndx = u16_at(elf, 0x32)? as usize;
    if shentsize != 40 || shnum == 0 || shstrndx >= shnum || shnum >= 0xff00 {
        bail!("unexpected section headers (size {shentsize}, count {shnum}, names {shstrndx})");
    }
    elf.get(shoff..shoff + shnum * shentsize)
        .context("the section headers lie past the end of the file")?;
    let names_header = shoff + shstrndx * 40;
    let names_off = u32_at(elf, names_header + 16)? as usize;
    let names_size = u32_at(elf, names_header + 20)? as usize;
    elf.get(names_off..names_off + names_size)
        .context("the section names lie past the end of the file")?;
    Ok(Headers {
        shoff,
        shnum,
        shstrndx,
        names_off,
        names_size,
    })
}

/// A copy of a little-endian ELF32 file in which defmt-decoder finds no defmt table: its
/// `.defmt` sections are named `.nodef` and its `_defmt_version_` symbol `_nodef_version_`
/// (names of the same length in the same string tables), nothing else changed; `Ok(None)` when
/// it has neither.
pub fn without_defmt_table(elf: &[u8]) -> Result<Option<Vec<u8>>> {
    const SHT_STRTAB: u32 = 3;
    let h = headers(elf)?;
    let mut out = elf.to_vec();
    let mut changed = false;
    for i in 0..h.shnum {
        let header = h.shoff + i * 40;
        if i == h.shstrndx {
            // The section names: `.defmt`, `.defmt.<anything>`.
            let names = &mut out[h.names_off..h.names_off + h.names_size];
            let mut at = 0;
            for name in names.split_mut(|&b| b == 0) {
                let len = name.len();
                if name.starts_with(b".defmt") && matches!(name.get(6), None | Some(b'.')) {
                    name[..6].copy_from_slice(b".nodef");
                    changed = true;
                }
                at += len + 1;
            }
            debug_assert!(at >= h.names_size);
        } else if u32_at(elf, header + 4)? == SHT_STRTAB {
            // A symbol table's names: the version symbol, however the linker quoted it.
            let off = u32_at(elf, header + 16)? as usize;
            let size = u32_at(elf, header + 20)? as usize;
            let names = out
                .get_mut(off..off + size)
                .context("a string table lies past the end of the file")?;
            let wanted = b"_defmt_version_ = ";
            let mut j = 0;
            while j + wanted.len() <= names.len() {
                if &names[j..j + wanted.len()] == wanted {
                    names[j..j + 6].copy_from_slice(b"_nodef");
                    changed = true;
                }
                j += 1;
            }
        }
    }
    Ok(changed.then_some(out))
}

/// A copy of a little-endian ELF32 file (what AVR firmware is) with one more section, `name`,
/// holding `contents` and loaded nowhere. The section names and headers are written again at
/// the end of the file; everything else stays where it was.
pub fn with_section(elf: &[u8], name: &str, contents: &[u8]) -> Result<Vec<u8>> {
    let Headers {
        shoff,
        shnum,
        shstrndx,
        names_off,
        names_size,
    } = headers(elf)?;
    let headers = &elf[shoff..shoff + shnum * 40];
    let old_names = &elf[names_off..names_off + names_size];

    let mut out = elf.to_vec();
    let align = |out: &mut Vec<u8>, to: usize| out.resize(out.len().div_ceil(to) * to, 0);
    // The section names, with the new one.
    let new_names_off = out.len();
    out.extend_from_slice(old_names);
    let name_index = old_names.len() as u32;
    out.extend(name.as_bytes());
    out.push(0);
    let new_names_size = out.len() - new_names_off;
    // The new section's contents.
    align(&mut out, 4);
    let contents_off = out.len();
    out.extend_from_slice(contents);
    // The section headers: the old ones (the names' moved), then the new one.
    align(&mut out, 4);
    let new_shoff = out.len();
    for i in 0..shnum {
        let mut h = headers[i * 40..i * 40 + 40].to_vec();
        if i == shstrndx {
            h[16..20].copy_from_slice(&(new_names_off as u32).to_le_bytes());
            h[20..24].copy_from_slice(&(new_names_size as u32).to_le_bytes());
        }
        out.extend(h);
    }
    let words: [u32; 10] = [
        name_index,
        1, // SHT_PROGBITS
        0, // no flags: not loaded
        0, // address
        contents_off as u32,
        contents.len() as u32,
        0, // link
        0, // info
        1, // alignment
        0, // entry size
    ];
    for w in words {
        out.extend(w.to_le_bytes());
    }
    let shoff = u32::try_from(new_shoff).context("the ELF file is over 4 GiB")?;
    out[0x20..0x24].copy_from_slice(&shoff.to_le_bytes());
    out[0x30..0x32].copy_from_slice(&((shnum + 1) as u16).to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::{Object, ObjectSection};

    #[test]
    fn a_section_is_added_and_the_rest_kept() {
        // A small real AVR ELF (avr-gcc for the ATmega328P).
        let elf = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/project/firmware.elf"
        ))
        .unwrap();
        let contents = b"\x0c\x04abc\0 and more";
        let out = with_section(&elf, ".mmcu", contents).unwrap();
        let before = object::File::parse(&*elf).unwrap();
        let after = object::File::parse(&*out).unwrap();
        assert_eq!(
            after.sections().count(),
            before.sections().count() + 1,
            "one more section"
        );
        for s in before.sections() {
            let name = s.name().unwrap();
            let t = after.section_by_name(name).unwrap();
            if name == ".shstrtab" {
                // The section names, with the new one at the end.
                let mut names = s.data().unwrap().to_vec();
                names.extend(b".mmcu\0");
                assert_eq!(t.data().unwrap(), names);
                continue;
            }
            assert_eq!(t.data().unwrap(), s.data().unwrap(), "{name}");
            assert_eq!(t.address(), s.address(), "{name}");
        }
        let added = after.section_by_name(".mmcu").unwrap();
        assert_eq!(added.data().unwrap(), contents);
        assert_eq!(
            crate::firmware::avr_device(&out),
            crate::firmware::avr_device(&elf)
        );
        assert!(with_section(b"not an elf", ".mmcu", b"").is_err());
    }

    /// A firmware with a defmt table is tested in tests/it/decode/rtt.rs (the micro:bit v2's).
    #[test]
    fn firmware_without_a_defmt_table_has_nothing_to_hide() {
        let avr = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/project/firmware.elf"
        ))
        .unwrap();
        assert!(without_defmt_table(&avr).unwrap().is_none());
        assert!(without_defmt_table(b"not an elf").is_err());
    }
}
