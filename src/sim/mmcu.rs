//! simavr's `.mmcu` section: what the firmware file tells simavr to trace
//! (`simavr/avr/avr_mcu_section.h`; the same in simavr 1.6 and 1.7, whose command lines differ).
//! [`crate::firmware::section::with_section`] adds it to a copy of the ELF.

use anyhow::{Context, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_written_as_simavr_reads_them() {
        let mmcu = Mmcu::default()
            .vcd_file("/dev/pts/7", 1000)
            .unwrap()
            .register(0xc6, "uart")
            .unwrap()
            .pin('B', 5, "led")
            .unwrap();
        // The tags as simavr reads them: tag, length, data.
        let b = mmcu.bytes();
        assert_eq!(&b[..2], &[12, 11]);
        assert_eq!(&b[2..13], b"/dev/pts/7\0");
        assert_eq!(&b[13..19], &[13, 4, 0xe8, 0x03, 0, 0]);
        assert_eq!(&b[19..28], &[14, 8, 0xff, 0xc6, 0, b'u', b'a', b'r', b't']);
        assert_eq!(&b[29..], &[15, 7, b'B', 5, 0, b'l', b'e', b'd', 0]);
    }
}
