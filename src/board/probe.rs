//! Debug probes as a family's data (`probes` in `boards/families/cortex-m.toml`): which USB ids
//! are which probe. `nixflash ports` names the probes it finds on USB with them, and `nixflash
//! doctor` writes the udev rules that let a user reach them from the same list.

use std::fmt;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::UsbId;

/// One kind of debug probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// Its USB id, or every product of a vendor (`"1366:*"`).
    pub id: ProbeId,
    /// What it is called (`"ST-LINK/V2-1"`).
    pub name: String,
    /// Where it is found or how it is wired (`"on Nucleo boards"`).
    pub about: String,
}

impl Probe {
    /// Its name and, in parentheses, where it is found: `ST-LINK/V2-1 (on Nucleo boards)`.
    pub fn title(&self) -> String {
        format!("{} ({})", self.name, self.about)
    }
}

/// A USB vendor id and a product id, or any product of the vendor: `"0483:374b"`, `"1366:*"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeId {
    pub vid: u16,
    /// `None`: any product of the vendor.
    pub pid: Option<u16>,
}

impl ProbeId {
    /// Whether a device with USB id `id` is this probe.
    pub fn matches(&self, id: UsbId) -> bool {
        self.vid == id.vid && self.pid.is_none_or(|p| p == id.pid)
    }

    /// Whether a device could be both.
    fn overlaps(&self, other: &ProbeId) -> bool {
        self.vid == other.vid
            && (self.pid.is_none() || other.pid.is_none() || self.pid == other.pid)
    }
}

impl std::str::FromStr for ProbeId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(v) = s.strip_suffix(":*") {
            // Any product: parse the vendor with a placeholder product.
            let id: UsbId = format!("{v}:0000")
                .parse()
                .map_err(|_| format!("`{s}` is not a probe's USB id: write it \"0483:374b\", or \"1366:*\" for any product of a vendor"))?;
            return Ok(ProbeId {
                vid: id.vid,
                pid: None,
            });
        }
        let id: UsbId = s.parse().map_err(|_| {
            format!("`{s}` is not a probe's USB id: write it \"0483:374b\", or \"1366:*\" for any product of a vendor")
        })?;
        Ok(ProbeId {
            vid: id.vid,
            pid: Some(id.pid),
        })
    }
}

impl fmt::Display for ProbeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(p) => write!(f, "{:04x}:{p:04x}", self.vid),
            None => write!(f, "{:04x}:*", self.vid),
        }
    }
}

impl Serialize for ProbeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProbeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A family's probe list is usable: names and places given, and no USB id that two probes claim.
pub fn check(probes: &[Probe]) -> Result<()> {
    for (i, p) in probes.iter().enumerate() {
        if p.name.trim().is_empty() || p.about.trim().is_empty() {
            bail!("the probe {} has an empty `name` or `about`", p.id);
        }
        if let Some(q) = probes[..i].iter().find(|q| q.id.overlaps(&p.id)) {
            bail!(
                "the probes {} ({}) and {} ({}) claim the same USB ids",
                q.id,
                q.name,
                p.id,
                p.name
            );
        }
    }
    Ok(())
}

/// The probe a device with USB id `id` is, among `probes`.
pub fn classify(probes: &[Probe], id: UsbId) -> Option<&Probe> {
    probes.iter().find(|p| p.id.matches(id))
}
