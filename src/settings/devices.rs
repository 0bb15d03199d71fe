//! Settings for several boards at once. Every source is gathered and checked once
//! ([`gather_all`]); then each board gets its own ([`per_device`]): `--set`, then the
//! environment, then the settings file's section for the board's USB serial number, then the
//! file's top-level lines, the first that names a key winning, with `{index}` (1, 2, … in port
//! order) and `{serial}` (the board's USB serial number) filled in. `{{` is a literal `{`; any
//! other `{name}` is refused. Everything is refused before anything is flashed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::file::{self, FileSettings, Section};
use super::{check_key, check_value, encode_sized, parse_flag, section, Origin, Setting, Settings};
use crate::error::{Failure, Kind};

/// The placeholders a value may hold, as said in messages.
const KNOWN: &str =
    "{index} (the board's number, 1, 2, … in port order) and {serial} (its USB serial number)";

/// A board to be flashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its number in the run, from 1, in port order: what `{index}` stands for.
    pub index: usize,
    /// Its serial port (or boot drive).
    pub port: String,
    /// Its USB serial number, if it has one: what `{serial}` stands for.
    pub serial: Option<String>,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.serial {
            Some(s) => write!(f, "the board on {} (serial number {s})", self.port),
            None => write!(f, "the board on {} (no USB serial number)", self.port),
        }
    }
}

/// One board's settings: where each came from, and the region that holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSettings {
    pub device: Device,
    /// With `{index}` and `{serial}` filled in; `describe()` says where each came from.
    pub settings: Settings,
    /// The settings region ([`super::encode_sized`]), ready to be written.
    pub region: Vec<u8>,
}

/// What does not stop the flashing but should be said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The settings file has a section for a serial number that no board of the run has.
    UnknownSerial {
        serial: String,
        file: PathBuf,
        /// The section's line and column.
        at: (usize, usize),
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnknownSerial { serial, file, at } => write!(
                f,
                "{}:{}:{}: no board being flashed has the serial number in {}: its settings are \
                 not written",
                file.display(),
                at.0,
                at.1,
                section(serial)
            ),
        }
    }
}

/// Every source of settings, each checked: what [`Gathered::single`] and [`per_device`] merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gathered {
    /// `--set`, then the environment.
    overrides: Settings,
    /// The settings file, if there is one.
    file: Option<FileSettings>,
}

/// The settings from `--set` arguments, environment variables (`vars`, as
/// `std::env::vars_os()` gives them) and the settings file of `root` (if there is one): keys,
/// values and placeholders checked, nothing merged yet.
pub fn gather_all(
    flags: &[String],
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    root: Option<&Path>,
) -> Result<Gathered> {
    let mut overrides = Settings::default();
    for arg in flags {
        let (key, value) = parse_flag(arg)?;
        if overrides.entries.contains_key(key) {
            return Err(
                Failure::new(Kind::Setting, format!("`--set {key}=…` is given twice"))
                    .hint("nothing was written or flashed; give each setting once")
                    .into(),
            );
        }
        overrides.add(key, value, Origin::Flag)?;
    }
    let mut env: Vec<(String, String, String)> = Vec::new();
    for (name, value) in vars {
        let Some(name) = name.to_str() else { continue };
        let Some(key) = name.strip_prefix(super::ENV_PREFIX) else {
            continue;
        };
        let value = value.into_string().map_err(|_| {
            Failure::new(Kind::Setting, format!("${name} is not UTF-8"))
                .hint("nothing was written or flashed; settings are UTF-8 text")
        })?;
        env.push((key.to_ascii_lowercase(), value, name.to_string()));
    }
    env.sort();
    for (key, value, name) in env {
        overrides.add(&key, &value, Origin::Env(name))?;
    }
    let file = match root {
        Some(root) => file::read(&root.join(super::FILE))?,
        None => None,
    };
    let g = Gathered { overrides, file };
    g.check()?;
    Ok(g)
}

impl Gathered {
    /// Every key, value and origin of every source, in the order they win.
    fn all(&self) -> Vec<(&str, &str, Origin)> {
        let mut out: Vec<(&str, &str, Origin)> = self
            .overrides
            .entries
            .iter()
            .map(|(k, s)| (k.as_str(), s.value.as_str(), s.origin.clone()))
            .collect();
        if let Some(f) = &self.file {
            for s in &f.sections {
                let origin = Origin::Device {
                    file: f.path.clone(),
                    serial: s.serial.clone(),
                };
                out.extend(s.entries.iter().map(|(k, v)| (&**k, &**v, origin.clone())));
            }
            let origin = Origin::File(f.path.clone());
            out.extend(f.defaults.iter().map(|(k, v)| (&**k, &**v, origin.clone())));
        }
        out
    }

    /// Checks the file's keys and values, and that every placeholder is one nixflash knows.
    fn check(&self) -> Result<()> {
        for (key, value, origin) in self.all() {
            check_key(key, &origin)?;
            check_value(key, value, &origin)?;
            if let Some(name) = names(value).find(|n| !matches!(*n, "index" | "serial")) {
                return Err(Failure::new(
                    Kind::Setting,
                    format!(
                        "the value of `{key}` (from {origin}) holds `{{{name}}}`, which is no \
                         placeholder: the placeholders are {KNOWN}"
                    ),
                )
                .hint("nothing was written or flashed; write `{{` for a `{` that is not a placeholder")
                .into());
            }
        }
        Ok(())
    }

    /// The settings of a board with the USB serial number `serial` (none: only the defaults),
    /// placeholders as written.
    fn merged_for(&self, serial: Option<&str>) -> Settings {
        let mut s = self.overrides.clone();
        let mut fill = |key: &str, value: &str, origin: Origin| {
            s.entries.entry(key.to_string()).or_insert(Setting {
                value: value.to_string(),
                origin,
            });
        };
        if let Some(f) = &self.file {
            if let Some(own) = f
                .sections
                .iter()
                .find(|s| Some(s.serial.as_str()) == serial)
            {
                for (k, v) in &own.entries {
                    let serial = own.serial.clone();
                    fill(
                        k,
                        v,
                        Origin::Device {
                            file: f.path.clone(),
                            serial,
                        },
                    );
                }
            }
            for (k, v) in &f.defaults {
                fill(k, v, Origin::File(f.path.clone()));
            }
        }
        s
    }

    /// Whether no source gives any setting (neither to every board nor to one).
    pub fn is_empty(&self) -> bool {
        self.merged().is_empty() && self.sections().is_empty()
    }

    /// The settings every board gets (`--set`, the environment, the file's top-level lines),
    /// placeholders as written: what to describe when none are written.
    pub fn merged(&self) -> Settings {
        self.merged_for(None)
    }

    /// The settings of a run that writes one board's (a single-board flash, an image):
    /// [`Gathered::merged`], refused (one line) when a value holds `{index}` or `{serial}`, which
    /// only a run of several boards fills in.
    pub fn single(&self) -> Result<Settings> {
        let s = self.merged();
        for (key, setting) in &s.entries {
            if let Some(name) = names(&setting.value).next() {
                return Err(Failure::new(
                    Kind::Setting,
                    format!(
                        "the value of `{key}` (from {}) holds `{{{name}}}`, which a flash of \
                         several boards fills in for each, but this writes one board's settings",
                        setting.origin
                    ),
                )
                .hint(format!(
                    "nothing was written or flashed; give this board's own value (--set \
                     {key}=…), or flash several at once (`nixflash flash --port A --port B`, \
                     or `--all`)"
                ))
                .into());
            }
        }
        Ok(s)
    }

    /// The settings file's device sections.
    pub fn sections(&self) -> &[Section] {
        self.file.as_ref().map_or(&[], |f| &f.sections)
    }
}

/// The names of the placeholders `{name}` in `value`, in order.
fn names(value: &str) -> impl Iterator<Item = &str> {
    pieces(value).into_iter().filter_map(|p| match p {
        Piece::Name(n) => Some(n),
        Piece::Text(_) => None,
    })
}

/// A stretch of a value: text as it is, or a placeholder's name.
enum Piece<'a> {
    Text(&'a str),
    Name(&'a str),
}

/// `value` cut at its placeholders: `{name}` with a name of `a-z0-9_`; `{{` is a `{`, and any
/// other `{` is itself.
fn pieces(value: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(i) = rest.find('{') {
        out.push(Piece::Text(&rest[..i]));
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('{') {
            out.push(Piece::Text("{"));
            rest = tail;
            continue;
        }
        let len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if len > 0 && after[len..].starts_with('}') {
            out.push(Piece::Name(&after[..len]));
            rest = &after[len + 1..];
        } else {
            out.push(Piece::Text("{"));
            rest = after;
        }
    }
    out.push(Piece::Text(rest));
    out
}

/// `value` with the placeholders filled in for `device`; refused when `{serial}` has nothing
/// to stand for.
fn fill_in(key: &str, setting: &Setting, device: &Device) -> Result<String> {
    let mut out = String::new();
    for piece in pieces(&setting.value) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Name("index") => out.push_str(&device.index.to_string()),
            Piece::Name("serial") => match &device.serial {
                Some(s) => out.push_str(s),
                None => {
                    return Err(Failure::new(
                        Kind::Setting,
                        format!(
                            "the value of `{key}` (from {}) holds `{{serial}}`, but {device} \
                             has none",
                            setting.origin
                        ),
                    )
                    .hint(format!(
                        "nothing was flashed; flash that board on its own with its own value \
                         (--port {} --set {key}=…), or use {{index}}",
                        device.port
                    ))
                    .into())
                }
            },
            // `check` let no other name through.
            Piece::Name(other) => out.push_str(&format!("{{{other}}}")),
        }
    }
    check_value(key, &out, &setting.origin)?;
    Ok(out)
}

/// Each board's settings and what to warn about, or the refusal (one line, before anything is
/// flashed) of the first board whose settings cannot be written: a key that the settings file
/// gives only in other boards' sections, `{serial}` for a board without a serial number, two
/// boards with the serial number a section or `{serial}` needs to tell apart, or more settings
/// than the region holds. A section for a serial number no board has is a [`Warning`].
pub fn per_device(
    gathered: &Gathered,
    devices: &[Device],
    size: usize,
) -> Result<(Vec<DeviceSettings>, Vec<Warning>)> {
    let defaults = gathered.merged();
    // The keys only device sections give, and the serial numbers of those sections.
    let mut only_in_sections: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in gathered.sections() {
        for (key, _) in &s.entries {
            if !defaults.entries.contains_key(key) {
                only_in_sections.entry(key).or_default().push(&s.serial);
            }
        }
    }
    let mut out = Vec::new();
    for (i, device) in devices.iter().enumerate() {
        let serial = device.serial.as_deref();
        let raw = gathered.merged_for(serial);
        same_serial(gathered, devices, i, &raw)?;
        if let Some((key, serials)) = only_in_sections
            .iter()
            .find(|(k, _)| !raw.entries.contains_key(**k))
        {
            return Err(missing(device, key, serials));
        }
        let mut settings = Settings::default();
        for (key, setting) in &raw.entries {
            let value = fill_in(key, setting, device)?;
            let origin = setting.origin.clone();
            settings
                .entries
                .insert(key.clone(), Setting { value, origin });
        }
        // Said of this board: the others' may fit.
        let region = encode_sized(&settings, size).map_err(|e| match e.downcast::<Failure>() {
            Ok(mut f) => {
                f.message = format!("{device}: {}", f.message);
                f.into()
            }
            Err(e) => e,
        })?;
        out.push(DeviceSettings {
            device: device.clone(),
            settings,
            region,
        });
    }
    let warnings = gathered.file.iter().flat_map(|f| {
        f.sections
            .iter()
            .filter(|s| {
                !devices
                    .iter()
                    .any(|d| d.serial.as_deref() == Some(&*s.serial))
            })
            .map(|s| Warning::UnknownSerial {
                serial: s.serial.clone(),
                file: f.path.clone(),
                at: s.at,
            })
    });
    Ok((out, warnings.collect()))
}

/// Refuses `devices[i]` when another board of the run has its serial number and the settings need
/// to tell them apart by it (a section for it, or `{serial}`).
fn same_serial(g: &Gathered, devices: &[Device], i: usize, raw: &Settings) -> Result<()> {
    let device = &devices[i];
    let Some(serial) = &device.serial else {
        return Ok(());
    };
    let Some(other) = devices
        .iter()
        .enumerate()
        .find(|(j, d)| *j != i && d.serial.as_ref() == Some(serial))
        .map(|(_, d)| d)
    else {
        return Ok(());
    };
    let has_section = g.sections().iter().any(|s| &s.serial == serial);
    let uses_serial = raw
        .entries
        .values()
        .any(|s| names(&s.value).any(|n| n == "serial"));
    if !has_section && !uses_serial {
        return Ok(());
    }
    let needs = if has_section {
        format!("the settings file's {}", section(serial))
    } else {
        "`{serial}`".to_string()
    };
    Err(Failure::new(
        Kind::Setting,
        format!(
            "the boards on {} and {} have the same USB serial number {serial}, and {needs} cannot \
             tell them apart",
            device.port, other.port
        ),
    )
    .hint("nothing was flashed; flash them one at a time (--port), each with its own --set")
    .into())
}

/// The refusal of a board that lacks `key`, which the sections of `serials` give.
fn missing(device: &Device, key: &str, serials: &[&str]) -> anyhow::Error {
    let given = serials
        .iter()
        .map(|s| section(s))
        .collect::<Vec<_>>()
        .join(", ");
    let add = match &device.serial {
        Some(s) => format!(
            "add `{key} = \"…\"` under {} in the settings file, ",
            section(s)
        ),
        None => String::new(),
    };
    Failure::new(
        Kind::Setting,
        format!("{device} has no `{key}`: the settings file gives it only in the sections {given}"),
    )
    .hint(format!(
        "nothing was flashed; {add}give every board one (a top-level `{key} = \"…\"` line), or \
         --set {key}=…"
    ))
    .into()
}
