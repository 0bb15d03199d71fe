//! The ESP32 partition table of a project (`partitions.csv`, ESP-IDF's CSV format), read for the
//! offset and size of its `settings` partition, where the settings region goes.
//!
//! Each line that is not blank or a `#` comment is `name, type, subtype, offset, size[, flags]`;
//! offsets and sizes are decimal or `0x` hex numbers, optionally with a `K` or `M` suffix.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::error::{Failure, Kind};

/// The project's partition table, in its root.
pub const FILE: &str = "partitions.csv";

/// One partition of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    pub kind: String,
    pub subtype: String,
    /// None when the table leaves it to the tools (an empty field).
    pub offset: Option<u32>,
    pub size: u32,
}

/// Reads a table's text; `path` is for messages.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Partition>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{}:{}", path.display(), n + 1);
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < 5 {
            return Err(Failure::new(
                Kind::PartitionTable,
                format!(
                    "{}: `{line}` is not `name, type, subtype, offset, size`",
                    at()
                ),
            )
            .hint("fix the line (ESP-IDF's partition-table CSV format)")
            .into());
        }
        let number = |field: &str, what: &str| {
            parse_number(field).ok_or_else(|| {
                Failure::new(
                    Kind::PartitionTable,
                    format!("{}: the {what} `{field}` is not a number", at()),
                )
                .hint("write it as 0x9000, 36864, 4K or 1M")
            })
        };
        let offset = match f[3] {
            "" => None,
            o => Some(number(o, "offset")?),
        };
        out.push(Partition {
            name: f[0].to_string(),
            kind: f[1].to_string(),
            subtype: f[2].to_string(),
            offset,
            size: number(f[4], "size")?,
        });
    }
    Ok(out)
}

fn parse_number(s: &str) -> Option<u32> {
    let (digits, scale) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1024),
        'M' | 'm' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    let v = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    v.checked_mul(scale)
}

/// Where the settings region goes in flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub offset: u32,
    pub size: u32,
}

/// The `settings` partition of the table at `path`: None when the file does not exist or has no
/// such partition; an error when it cannot be read or the partition cannot hold the region.
pub fn settings_region(path: &Path) -> Result<Option<Region>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let table = parse(&text, path)?;
    let Some(p) = table.iter().find(|p| p.name == super::PARTITION) else {
        return Ok(None);
    };
    let Some(offset) = p.offset else {
        return Err(Failure::new(
            Kind::PartitionTable,
            format!(
                "{}: the `{}` partition has no offset",
                path.display(),
                super::PARTITION
            ),
        )
        .hint("give it one (e.g. 0xe000): nixflash writes the settings there")
        .into());
    };
    if (p.size as usize) < super::SIZE || offset % 0x1000 != 0 {
        return Err(Failure::new(
            Kind::PartitionTable,
            format!(
            "{}: the `{}` partition ({:#x} bytes at {offset:#x}) cannot hold the {}-byte settings \
             region",
            path.display(),
            super::PARTITION,
            p.size,
            super::SIZE
        ),
        )
        .hint("give it at least 0x1000 bytes at an offset that is a multiple of 0x1000")
        .into());
    }
    Ok(Some(Region {
        offset,
        size: p.size,
    }))
}
