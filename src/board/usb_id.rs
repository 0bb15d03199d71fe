//! USB ids (`2341:0043`) as board files write them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A USB vendor and product id, written `"2341:0043"` in board files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsbId {
    pub vid: u16,
    pub pid: u16,
}

impl std::str::FromStr for UsbId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{s}` is not a USB id: write it as four hex digits, a colon, four hex digits (\"2341:0043\")")
        };
        let (v, p) = s.split_once(':').ok_or_else(bad)?;
        if v.len() != 4 || p.len() != 4 {
            return Err(bad());
        }
        Ok(UsbId {
            vid: u16::from_str_radix(v, 16).map_err(|_| bad())?,
            pid: u16::from_str_radix(p, 16).map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for UsbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vid, self.pid)
    }
}

impl Serialize for UsbId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UsbId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
