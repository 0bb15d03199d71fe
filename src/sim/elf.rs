//! What the simulator needs from the firmware's ELF: the MCU it was built for (avr-libc's
//! `.note.gnu.avr.deviceinfo`), and a copy with a `.mmcu` section, simavr's way of being told
//! from the firmware file what to trace (`simavr/avr/avr_mcu_section.h`; the same in simavr 1.6
//! and 1.7, whose command lines differ).

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};

/// The MCU an AVR ELF was linked for, from the device note avr-libc's start-up code carries
/// (`atmega328p`); `None` when the ELF has none.
pub fn avr_device(data: &[u8]) -> Option<String> {
    let file = object::File::parse(data).ok()?;
    let note = file.section_by_name(".note.gnu.avr.deviceinfo")?;
    let note = note.data().ok()?;
    // namesz, descsz, type, then the name ("AVR\0") padded to 4 bytes, then the descriptor.
    let word = |b: &[u8], at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let namesz = word(note, 0)?;
    let descsz = word(note, 4)?;
    let start = 12 + namesz.div_ceil(4) * 4;
    let desc = note.get(start..start + descsz)?;
    // Flash, RAM and EEPROM start and size (6 words), the offset table's length in bytes (its
    // own word included) and the table (the device name's offset), then the string table.
    let table_len = word(desc, 24)?;
    let strings = desc.get(24 + table_len..)?;
    let name_at = word(desc, 28)?;
    let name = strings.get(name_at..)?;
    let end = name.iter().position(|b| *b == 0)?;
    let name = std::str::from_utf8(&name[..end]).ok()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// simavr's `.mmcu` tags (`avr_mcu_section.h`).
const TAG_VCD_FILENAME: u8 = 12;
const TAG_VCD_PERIOD: u8 = 13;
const TAG_VCD_TRACE: u8 = 14;
const TAG_VCD_PORTPIN: u8 = 15;

/// The contents of a `.mmcu` section: tag, length, data, one after the other.
#[derive(Debug, Default, Clone)]
pub struct Mmcu(Vec<u8>);

impl Mmcu {
    fn tag(mut self, tag: u8, data: &[u8]) -> Result<Mmcu> {
        let len = u8::try_from(data.len()).context("a .mmcu tag holds at most 255 bytes")?;
        self.0.extend([tag, len]);
        self.0.extend_from_slice(data);
        Ok(self)
    }

    /// simavr writes its VCD trace to `path`, flushing what it logged every `period_us` of
    /// simulated time.
    pub fn vcd_file(self, path: &str, period_us: u32) -> Result<Mmcu> {
        let mut name = path.as_bytes().to_vec();
        name.push(0);
        self.tag(TAG_VCD_FILENAME, &name)?
            .tag(TAG_VCD_PERIOD, &period_us.to_le_bytes())
    }

    /// Traces every write to the register at data address `address` (8 bits) as `name`.
    pub fn register(self, address: u16, name: &str) -> Result<Mmcu> {
        self.trace(TAG_VCD_TRACE, 0xff, address, name)
    }

    /// Traces the level of pin `bit` of port `port` (`'B'`, 5) as `name`.
    pub fn pin(self, port: char, bit: u8, name: &str) -> Result<Mmcu> {
        let port = u8::try_from(u32::from(port)).context("a port is one letter")?;
        self.trace(TAG_VCD_PORTPIN, port, u16::from(bit), name)
    }

    fn trace(self, tag: u8, mask: u8, what: u16, name: &str) -> Result<Mmcu> {
        let mut data = vec![mask];
        data.extend(what.to_le_bytes());
        data.extend(name.as_bytes());
        data.push(0);
        self.tag(tag, &data)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

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

/// A copy of a little-endian ELF32 file (what AVR firmware is) with one more section, `name`,
/// holding `contents` and loaded nowhere. The section names and headers are written again at
/// the end of the file; everything else stays where it was.
pub fn with_section(elf: &[u8], name: &str, contents: &[u8]) -> Result<Vec<u8>> {
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
    let headers = elf
        .get(shoff..shoff + shnum * shentsize)
        .context("the section headers lie past the end of the file")?;
    let names_header = &headers[shstrndx * 40..shstrndx * 40 + 40];
    let names_off = u32_at(names_header, 16)? as usize;
    let names_size = u32_at(names_header, 20)? as usize;
    let old_names = elf
        .get(names_off..names_off + names_size)
        .context("the section names lie past the end of the file")?;

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

    /// A small real AVR ELF (tests/fixtures/project/firmware.elf, avr-gcc for the ATmega328P).
    fn fixture() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/project/firmware.elf"
        ))
        .unwrap()
    }

    #[test]
    fn a_section_is_added_and_the_rest_kept() {
        let elf = fixture();
        let mmcu = Mmcu::default()
            .vcd_file("/dev/pts/7", 1000)
            .unwrap()
            .register(0xc6, "uart")
            .unwrap()
            .pin('B', 5, "led")
            .unwrap();
        let out = with_section(&elf, ".mmcu", mmcu.bytes()).unwrap();
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
        assert_eq!(added.data().unwrap(), mmcu.bytes());
        assert_eq!(avr_device(&out), avr_device(&elf));
        // The tags as simavr reads them: tag, length, data.
        let b = mmcu.bytes();
        assert_eq!(&b[..2], &[12, 11]);
        assert_eq!(&b[2..13], b"/dev/pts/7\0");
        assert_eq!(&b[13..19], &[13, 4, 0xe8, 0x03, 0, 0]);
        assert_eq!(&b[19..28], &[14, 8, 0xff, 0xc6, 0, b'u', b'a', b'r', b't']);
        assert_eq!(&b[29..], &[15, 7, b'B', 5, 0, b'l', b'e', b'd', 0]);
        assert!(with_section(b"not an elf", ".mmcu", b"").is_err());
    }

    #[test]
    fn the_device_note_names_the_mcu() {
        assert_eq!(avr_device(&fixture()).as_deref(), Some("atmega328p"));
        let esp = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/elf/esp32c3-blinky.elf"
        ))
        .unwrap();
        assert_eq!(avr_device(&esp), None);
    }
}
