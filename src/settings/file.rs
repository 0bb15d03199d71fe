//! The settings file (`settings.toml` in the project's root, which git ignores): its top-level
//! `key = "value"` lines are every board's settings (the defaults), and a table
//! `[device."<serial>"]` per board, keyed by its USB serial number, gives that board's own:
//!
//! ```toml
//! ssid = "Workshop"
//! name = "desk-{index}"
//!
//! [device."5A3F0021"]
//! name = "teacher"
//! ```
//!
//! A file of `key = "value"` lines alone (as before sections existed) is a valid file; a
//! top-level `device = "…"` string is the setting `device`. Whatever is wrong with the file is
//! said with its place, `settings.toml:3:8: …`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use toml_edit::{Item, TableLike};

use crate::error::{Failure, Kind};

/// The name of the table that holds the sections of devices.
pub const DEVICE_TABLE: &str = "device";

/// One device's section of the settings file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The USB serial number it is for.
    pub serial: String,
    /// Where the section's name is in the file (line, column; from 1).
    pub at: (usize, usize),
    /// Its `key = "value"` lines, in the file's order.
    pub entries: Vec<(String, String)>,
}

/// What the settings file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSettings {
    /// The file.
    pub path: PathBuf,
    /// The top-level `key = "value"` lines, in the file's order.
    pub defaults: Vec<(String, String)>,
    /// The `[device."<serial>"]` tables, in the file's order.
    pub sections: Vec<Section>,
}

/// Reads the settings file at `path` (None if there is none).
pub fn read(path: &Path) -> Result<Option<FileSettings>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let at = |offset: Option<usize>| crate::board::line_col(&text, offset.unwrap_or(0));
    let doc = toml_edit::Document::parse(text.as_str()).map_err(|e| {
        let (line, col) = at(e.span().map(|s| s.start));
        let message = e
            .message()
            .lines()
            .next()
            .unwrap_or("")
            .trim_end()
            .to_string();
        Failure::new(
            Kind::Setting,
            format!("{}:{line}:{col}: invalid TOML: {message}", path.display()),
        )
        .hint(
            "nothing was written or flashed; the file holds lines `key = \"value\"` (e.g. ssid = \
             \"MyNetwork\") and tables [device.\"<serial>\"] of such lines",
        )
    })?;
    let place = Place { path, at: &at };
    let root = doc.as_table();
    let mut out = FileSettings {
        path: path.to_path_buf(),
        ..FileSettings::default()
    };
    for (key, item) in root.iter() {
        match (key, item.as_table_like()) {
            (DEVICE_TABLE, Some(devices)) => out.sections = sections(devices, &place)?,
            _ => out.defaults.push(place.string(root, key, "")?),
        }
    }
    Ok(Some(out))
}

/// Says where things are in the file.
struct Place<'a> {
    path: &'a Path,
    at: &'a dyn Fn(Option<usize>) -> (usize, usize),
}

impl Place<'_> {
    /// The line and column of the key `key` of `table`.
    fn locate(&self, table: &dyn TableLike, key: &str) -> (usize, usize) {
        let span = table
            .get_key_value(key)
            .and_then(|(k, item)| k.span().or_else(|| item.span()));
        (self.at)(span.map(|s| s.start))
    }

    /// `path:line:col: message`, at the key `key` of `table`.
    fn failure(&self, table: &dyn TableLike, key: &str, message: String) -> Failure {
        let (line, col) = self.locate(table, key);
        Failure::new(
            Kind::Setting,
            format!("{}:{line}:{col}: {message}", self.path.display()),
        )
    }

    /// The key `key` of `table` and its string value; `within` names the table in messages.
    fn string(&self, table: &dyn TableLike, key: &str, within: &str) -> Result<(String, String)> {
        let item = table.get(key).unwrap_or(&Item::None);
        match item.as_str() {
            Some(value) => Ok((key.to_string(), value.to_string())),
            None => Err(self
                .failure(
                    table,
                    key,
                    format!("`{within}{key}` is not a string but {}", shown(item)),
                )
                .hint(format!(
                    "nothing was written or flashed; quote it ({key} = \"…\"); a device's own \
                     settings go in a table [{DEVICE_TABLE}.\"<serial>\"]"
                ))
                .into()),
        }
    }
}

/// What a TOML item is, for messages (`an integer`, `a table`).
fn shown(item: &Item) -> String {
    let name = item.type_name();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// The sections of the `device` table.
fn sections(devices: &dyn TableLike, place: &Place) -> Result<Vec<Section>> {
    let mut out = Vec::new();
    for (serial, item) in devices.iter() {
        let at = place.locate(devices, serial);
        let Some(table) = item.as_table_like() else {
            return Err(place
                .failure(
                    devices,
                    serial,
                    format!(
                        "`{DEVICE_TABLE}.\"{}\"` is not a table but {}",
                        serial.escape_debug(),
                        shown(item)
                    ),
                )
                .hint(format!(
                    "nothing was written or flashed; a device's settings are a table: \
                     [{DEVICE_TABLE}.\"<serial>\"] and `key = \"value\"` lines under it"
                ))
                .into());
        };
        if serial.trim().is_empty() {
            return Err(place
                .failure(
                    devices,
                    serial,
                    "a device section with an empty serial number".into(),
                )
                .hint(
                    "nothing was written or flashed; name the section by the board's USB serial \
                     number, as `nixflash ports` shows it",
                )
                .into());
        }
        let within = format!("{DEVICE_TABLE}.\"{}\".", serial.escape_debug());
        let mut entries = Vec::new();
        for (key, _) in table.iter() {
            entries.push(place.string(table, key, &within)?);
        }
        out.push(Section {
            serial: serial.to_string(),
            at,
            entries,
        });
    }
    Ok(out)
}
