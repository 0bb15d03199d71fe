//! Per-device settings that never enter the Nix store: Wi-Fi credentials, a URL, a device name.
//! They are written into a small region of the board's flash (on the ESP32, the data partition
//! `settings` of the project's partitions.csv, see [`partitions`]) that the firmware reads at
//! boot, so the firmware built is the same bytes whatever the settings.
//!
//! The region (all little-endian): bytes 0..4 the magic `NXFS`; 4..6 the format's version (1);
//! 6..8 the payload's length; 8..12 the CRC-32 (IEEE, as zlib) of the payload; then the payload,
//! UTF-8 lines `key=value\n`; the rest of its [`SIZE`] bytes is 0xFF (erased flash). An erased
//! region (0xFF where the magic would be) means "no settings". The firmware's side is the
//! generated project's src/settings.rs (templates/common/src/settings.rs.jinja, which each family's
//! src/settings.rs.jinja extends with where its region is and how it reads it).
//!
//! Settings come from `--set key=value` (repeatable), environment variables
//! `NIXFLASH_SET_<KEY>` and the git-ignored `settings.toml` in the project's root (its device's
//! section, then its top-level `key = "value"` lines: [`file`]), the first of these winning
//! ([`gather_all`]). Keys are 1 to 32 of `a-z`, `0-9` and `_`; values any UTF-8 without a
//! newline, a carriage return or NUL, in which `{index}` and `{serial}` stand for each board's
//! number and USB serial number when several are flashed at once ([`devices`]).

pub mod devices;
pub mod file;
pub mod partitions;
#[cfg(test)]
mod tests;

pub use devices::{gather_all, per_device, Device, DeviceSettings, Gathered, Warning};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{Failure, Kind};

/// The region's first bytes.
pub const MAGIC: [u8; 4] = *b"NXFS";
/// The version of the format [`encode`] writes.
pub const VERSION: u16 = 1;
/// The region's size: one flash sector.
pub const SIZE: usize = 4096;
/// Magic, version, length and checksum.
pub const HEADER: usize = 12;
/// The most payload a region holds.
pub const MAX_PAYLOAD: usize = SIZE - HEADER;
/// The longest key.
pub const MAX_KEY: usize = 32;
/// The label of the partition that holds the region.
pub const PARTITION: &str = "settings";
/// An environment variable `NIXFLASH_SET_SSID` is the setting `ssid`.
pub const ENV_PREFIX: &str = "NIXFLASH_SET_";
/// The settings file in the project's root, which git ignores.
pub const FILE: &str = "settings.toml";

/// What a key may hold, as said in messages.
const KEY_RULE: &str = "a key is 1 to 32 of a-z, 0-9 and _ (e.g. `ssid`, `wifi_password`)";

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--set key=value`.
    Flag,
    /// An environment variable, by name.
    Env(String),
    /// The settings file's top-level lines.
    File(PathBuf),
    /// The settings file's section for the device with this USB serial number.
    Device { file: PathBuf, serial: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => f.write_str("--set"),
            Origin::Env(var) => write!(f, "${var}"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Device { file, serial } => {
                write!(f, "{} {}", file.display(), section(serial))
            }
        }
    }
}

/// One setting and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub origin: Origin,
}

/// Settings by key, each from the source that wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub entries: BTreeMap<String, Setting>,
}

impl Settings {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|s| s.value.as_str())
    }

    /// Adds `key = value` from `origin` unless a source that wins already set it, after checking
    /// both.
    fn add(&mut self, key: &str, value: &str, origin: Origin) -> Result<()> {
        check_key(key, &origin)?;
        check_value(key, value, &origin)?;
        self.entries
            .entry(key.to_string())
            .or_insert_with(|| Setting {
                value: value.to_string(),
                origin,
            });
        Ok(())
    }

    /// The payload: `key=value\n` for each, in key order.
    pub fn payload(&self) -> String {
        self.entries
            .iter()
            .map(|(k, s)| format!("{k}={}\n", s.value))
            .collect()
    }

    /// The keys and where each came from (never the values, which may be secret):
    /// `password (--set), ssid (settings.toml)`.
    pub fn describe(&self) -> String {
        self.entries
            .iter()
            .map(|(k, s)| match &s.origin {
                Origin::File(p) => format!(
                    "{k} ({})",
                    p.file_name().unwrap_or(p.as_os_str()).to_string_lossy()
                ),
                Origin::Device { file, serial } => format!(
                    "{k} ({} {})",
                    file.file_name()
                        .unwrap_or(file.as_os_str())
                        .to_string_lossy(),
                    section(serial)
                ),
                o => format!("{k} ({o})"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks a key: [`KEY_RULE`].
pub fn check_key(key: &str, origin: &Origin) -> Result<()> {
    let bad = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'));
    let why = if key.is_empty() {
        "is empty".to_string()
    } else if let Some(c) = bad {
        format!("holds {}", shown_char(c))
    } else if key.len() > MAX_KEY {
        format!("is {} characters long", key.len())
    } else {
        return Ok(());
    };
    Err(Failure::new(
        Kind::Setting,
        format!(
            "the setting key `{}` (from {origin}) {why}: {KEY_RULE}",
            key.escape_debug()
        ),
    )
    .hint("nothing was written or flashed; rename the key")
    .into())
}

/// Checks a value: no newline, carriage return or NUL (the payload is lines, and C strings end
/// at NUL).
pub fn check_value(key: &str, value: &str, origin: &Origin) -> Result<()> {
    let Some(c) = value.chars().find(|c| matches!(c, '\n' | '\r' | '\0')) else {
        return Ok(());
    };
    Err(Failure::new(
        Kind::Setting,
        format!(
        "the value of `{key}` (from {origin}) holds {}: a setting's value is one line, without \
         newlines, carriage returns or NUL",
        shown_char(c)
    ),
    )
    .hint("nothing was written or flashed; give the value on one line")
    .into())
}

fn shown_char(c: char) -> String {
    match c {
        '\n' => "a newline".into(),
        '\r' => "a carriage return".into(),
        '\0' => "a NUL byte".into(),
        '=' => "`=`".into(),
        c if c.is_control() || c.is_whitespace() => format!("{:?}", c),
        c => format!("`{c}`"),
    }
}

/// Splits `--set key=value` at its first `=`.
pub fn parse_flag(arg: &str) -> Result<(&str, &str)> {
    arg.split_once('=').ok_or_else(|| {
        Failure::new(
            Kind::Setting,
            format!(
                "`--set {}` has no `=`: it takes key=value",
                arg.escape_debug()
            ),
        )
        .hint("e.g. --set ssid=MyNetwork --set password=secret")
        .into()
    })
}

/// The settings from `--set` arguments, environment variables (`vars`, as
/// `std::env::vars_os()` gives them) and the settings file of `root` (if there is one), each
/// checked, for one board (or an image): the first source that sets a key wins, the file's
/// device sections are not used, and `{index}` or `{serial}` in a value written is refused
/// ([`Gathered::single`]).
pub fn gather(
    flags: &[String],
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    root: Option<&Path>,
) -> Result<Settings> {
    gather_all(flags, vars, root)?.single()
}

/// How a device's section is written in the settings file: `[device."5A3F0021"]`.
pub fn section(serial: &str) -> String {
    format!("[{}.\"{}\"]", file::DEVICE_TABLE, serial.escape_debug())
}

/// The region holding `settings`: [`SIZE`] bytes (an ESP32 partition's sector). Refused (one
/// line) when the payload does not fit.
pub fn encode(settings: &Settings) -> Result<Vec<u8>> {
    encode_sized(settings, SIZE)
}

/// The region holding `settings` in `size` bytes (a board's `memory.settings.size`: 512 on AVR
/// boards). Refused (one line) when the payload does not fit.
pub fn encode_sized(settings: &Settings, size: usize) -> Result<Vec<u8>> {
    let payload = settings.payload();
    let room = size.saturating_sub(HEADER).min(MAX_PAYLOAD);
    if payload.len() > room {
        let (key, largest) = settings
            .entries
            .iter()
            .map(|(k, s)| (k.as_str(), k.len() + s.value.len() + 2))
            .max_by_key(|(_, n)| *n)
            .unwrap_or(("", 0));
        return Err(Failure::new(
            Kind::Setting,
            format!(
                "the settings take {} bytes, more than the {room} the settings region holds",
                payload.len()
            ),
        )
        .hint(format!(
            "nothing was written or flashed; shorten or drop a setting (the largest is `{key}`, \
             {largest} bytes as `{key}=value` and its newline)"
        ))
        .into());
    }
    let mut region = vec![0xFF; size];
    region[0..4].copy_from_slice(&MAGIC);
    region[4..6].copy_from_slice(&VERSION.to_le_bytes());
    // At most MAX_PAYLOAD, checked above.
    region[6..8].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    region[8..12].copy_from_slice(&crc32fast::hash(payload.as_bytes()).to_le_bytes());
    region[HEADER..HEADER + payload.len()].copy_from_slice(payload.as_bytes());
    Ok(region)
}

/// What a region holds, read back as the firmware reads it: the pairs, or why there are none.
pub fn decode(region: &[u8]) -> std::result::Result<Vec<(String, String)>, String> {
    if region.len() < HEADER {
        return Err(format!("{} bytes are too few for a region", region.len()));
    }
    if region[..4] == [0xFF; 4] {
        return Err("erased: no settings".into());
    }
    if region[..4] != MAGIC {
        return Err("no NXFS magic".into());
    }
    let version = u16::from_le_bytes([region[4], region[5]]);
    if version != VERSION {
        return Err(format!("version {version}"));
    }
    let len = usize::from(u16::from_le_bytes([region[6], region[7]]));
    let payload = region
        .get(HEADER..HEADER + len)
        .filter(|_| len <= MAX_PAYLOAD.min(region.len() - HEADER))
        .ok_or(format!("length {len}"))?;
    let crc = u32::from_le_bytes([region[8], region[9], region[10], region[11]]);
    if crc32fast::hash(payload) != crc {
        return Err("bad checksum".into());
    }
    let text = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// Writes `region` into `image` at `offset`, extending the image with 0xFF (erased flash) when
/// it ends before.
pub fn place(image: &mut Vec<u8>, offset: usize, region: &[u8]) {
    let end = offset + region.len();
    if image.len() < end {
        image.resize(end, 0xFF);
    }
    image[offset..end].copy_from_slice(region);
}
