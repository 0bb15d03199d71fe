//! The board database: `boards/*.toml` compiled into the binary, plus the user's and the project's
//! own board files, which add boards or replace built-in ones with the same id.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use include_dir::{include_dir, Dir};
use serde::{Deserialize, Serialize};

static BUILTIN_BOARDS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/boards");

/// The processor family: it selects the template set and the flasher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// 8-bit AVR (Arduino): nightly, `-Z build-std=core`, ravedude.
    Avr,
    /// Espressif RISC-V chips (ESP32-C3, -C6): stable, esp-hal, espflash.
    EspRiscv,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Avr => "avr",
            Family::EspRiscv => "esp-riscv",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct RustSpec {
    pub target: String,
    pub target_cpu: Option<String>,
    pub build_std: bool,
    pub toolchain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HalSpec {
    #[serde(rename = "crate")]
    pub krate: String,
    pub feature: String,
    pub led: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    pub flash: u64,
    pub ram: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlashTool {
    Ravedude,
    Espflash,
}

impl FlashTool {
    pub fn as_str(self) -> &'static str {
        match self {
            FlashTool::Ravedude => "ravedude",
            FlashTool::Espflash => "espflash",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlashSpec {
    pub tool: FlashTool,
    /// ravedude's board name.
    pub board: Option<String>,
    /// espflash's `--chip`.
    pub chip: Option<String>,
    pub baud: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all(deserialize = "kebab-case"))]
pub struct MonitorSpec {
    pub baud: u32,
    /// Whether the firmware's console reaches the computer over the board's USB port (false for
    /// boards whose USB is the chip itself, like the Leonardo, without a USB console).
    #[serde(default = "yes")]
    pub usb_console: bool,
}

fn yes() -> bool {
    true
}

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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsbSpec {
    pub ids: Vec<UsbId>,
}

/// One board, as written in a `boards/*.toml` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub name: String,
    pub family: Family,
    pub chip: String,
    pub docs: String,
    pub notes: Option<String>,
    pub rust: RustSpec,
    pub hal: HalSpec,
    pub memory: Memory,
    pub flash: FlashSpec,
    pub monitor: MonitorSpec,
    pub usb: UsbSpec,
}

/// Where a board definition came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "kebab-case")]
pub enum Source {
    Builtin,
    User(PathBuf),
    Project(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Builtin => f.write_str("built in"),
            Source::User(p) => write!(f, "user file {}", p.display()),
            Source::Project(p) => write!(f, "project file {}", p.display()),
        }
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

impl Board {
    /// Parses one board file. `origin` names it in errors (a path or `boards/uno.toml`).
    pub fn parse(text: &str, origin: &str) -> Result<Board> {
        let board: Board = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            anyhow::anyhow!(
                "{origin}:{line}:{col}: invalid board file: {}\n\
                 hint: the board format is described in nixflash's boards/README.md; \
                 compare with `nixflash boards show uno --toml`",
                e.message().trim_end()
            )
        })?;
        board
            .validate()
            .with_context(|| format!("{origin}: invalid board `{}`", board.id))?;
        Ok(board)
    }

    /// Checks what the TOML types cannot: ids, consistency between family, target and flasher.
    pub fn validate(&self) -> Result<()> {
        if !valid_id(&self.id) {
            bail!("id `{}` must be lowercase letters, digits and `-`", self.id);
        }
        for a in &self.aliases {
            if !valid_id(a) {
                bail!("alias `{a}` must be lowercase letters, digits and `-`");
            }
        }
        if self.name.trim().is_empty() {
            bail!("`name` is empty");
        }
        if !(self.docs.starts_with("https://") || self.docs.starts_with("http://")) {
            bail!("`docs` must be a URL, found `{}`", self.docs);
        }
        if self.memory.flash == 0 || self.memory.ram == 0 {
            bail!("`memory.flash` and `memory.ram` must be above zero");
        }
        if self.flash.baud == 0 || self.monitor.baud == 0 {
            bail!("`flash.baud` and `monitor.baud` must be above zero");
        }
        if !exact_channel(&self.rust.toolchain) {
            bail!(
                "`rust.toolchain = \"{}\"` is not an exact toolchain: pin a version (\"1.96.0\") \
                 or a dated nightly (\"nightly-2025-04-27\"), since `stable` or `nightly` alone \
                 would build with whatever is newest the day rust-overlay is updated",
                self.rust.toolchain
            );
        }
        if self.usb.ids.is_empty() {
            bail!("`usb.ids` is empty: list the board's USB ids so its port can be found");
        }
        if self.hal.led.trim().is_empty() {
            bail!("`hal.led` is empty");
        }
        match self.family {
            Family::Avr => {
                if self.rust.target != "avr-none" {
                    bail!("an avr board needs `rust.target = \"avr-none\"`");
                }
                if self.rust.target_cpu.as_deref() != Some(self.chip.as_str()) {
                    bail!(
                        "an avr board needs `rust.target-cpu = \"{}\"` (its chip)",
                        self.chip
                    );
                }
                if !self.rust.build_std || !self.rust.toolchain.starts_with("nightly") {
                    bail!(
                        "avr-none has no prebuilt core: set `rust.build-std = true` and a nightly \
                         `rust.toolchain`"
                    );
                }
                if self.hal.krate != "arduino-hal" {
                    bail!("avr boards use `hal.crate = \"arduino-hal\"`");
                }
                if self.flash.tool != FlashTool::Ravedude || self.flash.board.is_none() {
                    bail!(
                        "avr boards flash with ravedude: set `flash.tool = \"ravedude\"` and \
                         `flash.board` to ravedude's board name"
                    );
                }
            }
            Family::EspRiscv => {
                if !(self.rust.target.starts_with("riscv32")
                    && self.rust.target.ends_with("-none-elf"))
                {
                    bail!(
                        "an esp-riscv board needs a riscv32*-unknown-none-elf target, found `{}`",
                        self.rust.target
                    );
                }
                if self.rust.build_std {
                    bail!("esp-riscv targets ship a prebuilt core: set `rust.build-std = false`");
                }
                if self.hal.krate != "esp-hal" {
                    bail!("esp-riscv boards use `hal.crate = \"esp-hal\"`");
                }
                if self.flash.tool != FlashTool::Espflash || self.flash.chip.is_none() {
                    bail!(
                        "esp-riscv boards flash with espflash: set `flash.tool = \"espflash\"` and \
                         `flash.chip`"
                    );
                }
            }
        }
        Ok(())
    }

    /// Does this board answer to `name` (its id or an alias, any case)?
    pub fn answers_to(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.id == name || self.aliases.contains(&name)
    }

    /// The flasher's own name for the board (ravedude board name or espflash chip).
    pub fn flasher_target(&self) -> &str {
        match self.flash.tool {
            FlashTool::Ravedude => self.flash.board.as_deref().unwrap_or(&self.id),
            FlashTool::Espflash => self.flash.chip.as_deref().unwrap_or(&self.chip),
        }
    }
}

/// Whether `channel` names one toolchain for good: `1.96.0`, or `nightly-2025-04-27`.
pub fn exact_channel(channel: &str) -> bool {
    let numbers = |s: &str, n: usize, sep: char| {
        let parts: Vec<&str> = s.split(sep).collect();
        parts.len() == n
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    match channel.strip_prefix("nightly-") {
        Some(date) => date.len() == 10 && numbers(date, 3, '-'),
        None => numbers(channel, 3, '.'),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A board together with where it was defined.
#[derive(Debug, Clone)]
pub struct Entry {
    pub board: Board,
    pub source: Source,
}

/// All known boards, built-in ones first, replaced by user and project files with the same id.
#[derive(Debug, Clone, Default)]
pub struct Database {
    entries: BTreeMap<String, Entry>,
}

impl Database {
    /// The boards compiled into nixflash.
    pub fn builtin() -> Result<Database> {
        let mut db = Database::default();
        let mut files: Vec<_> = BUILTIN_BOARDS
            .files()
            .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort_by_key(|f| f.path());
        for f in files {
            let origin = format!("boards/{}", f.path().display());
            let text = f
                .contents_utf8()
                .with_context(|| format!("{origin} is not UTF-8"))?;
            db.insert(Board::parse(text, &origin)?, Source::Builtin)?;
        }
        Ok(db)
    }

    /// Built-in boards, then `$XDG_CONFIG_HOME/nixflash/boards/`, then `<project>/boards/`.
    pub fn load(project_root: Option<&Path>) -> Result<Database> {
        let mut db = Database::builtin()?;
        if let Some(dir) = user_boards_dir() {
            db.add_dir(&dir, Source::User)?;
        }
        if let Some(root) = project_root {
            db.add_dir(&root.join("boards"), Source::Project)?;
        }
        Ok(db)
    }

    /// Adds every `*.toml` in `dir` (a missing folder adds nothing).
    pub fn add_dir(&mut self, dir: &Path, source: fn(PathBuf) -> Source) -> Result<()> {
        let read = match std::fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        };
        let mut paths = Vec::new();
        for entry in read {
            let path = entry
                .with_context(|| format!("cannot read {}", dir.display()))?
                .path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
        }
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read board file {}", path.display()))?;
            let board = Board::parse(&text, &path.display().to_string())?;
            self.insert(board, source(path))?;
        }
        Ok(())
    }

    fn insert(&mut self, board: Board, source: Source) -> Result<()> {
        // An alias may not point at a different board than the one it names.
        for name in std::iter::once(&board.id).chain(&board.aliases) {
            if let Some(other) = self
                .entries
                .values()
                .find(|e| e.board.id != board.id && e.board.answers_to(name))
            {
                bail!(
                    "{}: `{name}` already names board `{}` ({})\n\
                     hint: give the board another id or alias, or override `{}` by using its id",
                    source_label(&source),
                    other.board.id,
                    other.source,
                    other.board.id
                );
            }
        }
        self.entries
            .insert(board.id.clone(), Entry { board, source });
        Ok(())
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn boards(&self) -> impl Iterator<Item = &Board> {
        self.entries.values().map(|e| &e.board)
    }

    /// Finds a board by id or alias.
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.values().find(|e| e.board.answers_to(name))
    }

    /// Like [`Database::find`], with an error that suggests the closest names.
    pub fn get(&self, name: &str) -> Result<&Board> {
        if let Some(e) = self.find(name) {
            return Ok(&e.board);
        }
        let close = self.closest(name);
        let mut msg = format!("unknown board `{name}`");
        if !close.is_empty() {
            msg.push_str(&format!("\nhint: did you mean {}?", close.join(", ")));
        }
        msg.push_str("\nhint: `nixflash boards` lists every board");
        bail!(msg)
    }

    /// Board ids and aliases most like `name`, best first (ids of the boards they name).
    pub fn closest(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        let mut scored: Vec<(f64, String, String)> = Vec::new();
        for b in self.boards() {
            for cand in std::iter::once(&b.id).chain(&b.aliases) {
                let mut score = strsim::jaro_winkler(&name, cand);
                if cand.contains(&name) || (name.len() >= 3 && name.contains(cand.as_str())) {
                    score = score.max(0.9);
                }
                scored.push((score, cand.clone(), b.id.clone()));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut out: Vec<String> = Vec::new();
        for (score, cand, id) in scored {
            if score < 0.8 || out.len() >= 3 {
                break;
            }
            let label = if cand == id {
                format!("`{id}`")
            } else {
                format!("`{cand}` ({id})")
            };
            if !out
                .iter()
                .any(|o| o.contains(&format!("`{id}`")) || o.ends_with(&format!("({id})")))
            {
                out.push(label);
            }
        }
        out
    }

    /// Where a board came from.
    pub fn source_of(&self, id: &str) -> Option<&Source> {
        self.entries.get(id).map(|e| &e.source)
    }
}

fn source_label(s: &Source) -> String {
    match s {
        Source::Builtin => "built-in boards".into(),
        Source::User(p) | Source::Project(p) => p.display().to_string(),
    }
}

/// `$XDG_CONFIG_HOME/nixflash/boards`, or `~/.config/nixflash/boards`.
pub fn user_boards_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("nixflash").join("boards"))
}

/// The text of a built-in board file, for `boards show --toml`.
pub fn builtin_source(id: &str) -> Option<&'static str> {
    BUILTIN_BOARDS
        .get_file(format!("{id}.toml"))
        .and_then(|f| f.contents_utf8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usb_ids_parse_and_print() {
        let id: UsbId = "2341:0043".parse().unwrap();
        assert_eq!((id.vid, id.pid), (0x2341, 0x0043));
        assert_eq!(id.to_string(), "2341:0043");
        assert!("2341-0043".parse::<UsbId>().is_err());
        assert!("23410:043".parse::<UsbId>().is_err());
        assert!("zz41:0043".parse::<UsbId>().is_err());
    }

    #[test]
    fn only_exact_toolchains_are_pins() {
        for yes in ["1.96.0", "1.100.12", "nightly-2025-04-27"] {
            assert!(exact_channel(yes), "{yes}");
        }
        for no in [
            "stable",
            "nightly",
            "1.96",
            "beta",
            "nightly-2025-04",
            "1.96.0-x",
            "",
        ] {
            assert!(!exact_channel(no), "{no}");
        }
        let c3 = builtin_source("esp32c3-devkitm-1").unwrap();
        let bad = c3.replace("toolchain = \"1.96.0\"", "toolchain = \"stable\"");
        let e = format!("{:#}", Board::parse(&bad, "b.toml").unwrap_err());
        assert!(e.contains("is not an exact toolchain"), "{e}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn every_builtin_board_parses_validates_and_is_named_by_its_file() {
        let db = Database::builtin().unwrap();
        let ids: Vec<&str> = db.boards().map(|b| b.id.as_str()).collect();
        for want in [
            "uno",
            "nano",
            "nano-new",
            "mega2560",
            "leonardo",
            "esp32c3-devkitm-1",
            "esp32c6-devkitc-1",
        ] {
            assert!(ids.contains(&want), "{want} missing from {ids:?}");
        }
        for f in BUILTIN_BOARDS.files() {
            if f.path().extension().is_some_and(|e| e == "toml") {
                let b = Board::parse(f.contents_utf8().unwrap(), "t").unwrap();
                assert_eq!(f.path().file_stem().unwrap().to_str().unwrap(), b.id);
            }
        }
        assert_eq!(db.get("esp32c3").unwrap().id, "esp32c3-devkitm-1");
        assert_eq!(db.get("UNO").unwrap().id, "uno");
    }

    #[test]
    fn a_malformed_board_names_line_and_column() {
        let text = "id = \"x\"\nname = 5\n";
        let e = Board::parse(text, "my.toml").unwrap_err().to_string();
        assert!(e.starts_with("my.toml:2:8: invalid board file"), "{e}");
        let e = Board::parse("id = \"x\"\nbogus = 1\n", "my.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("my.toml:"), "{e}");
    }

    #[test]
    fn inconsistent_boards_are_rejected() {
        let uno = builtin_source("uno").unwrap();
        let bad = uno.replace("build-std = true", "build-std = false");
        let e = format!("{:#}", Board::parse(&bad, "b.toml").unwrap_err());
        assert!(e.contains("build-std"), "{e}");
        let bad = uno.replace("\"2341:0043\"", "\"2341:43\"");
        let e = format!("{:#}", Board::parse(&bad, "b.toml").unwrap_err());
        assert!(e.contains("not a USB id"), "{e}");
    }

    #[test]
    fn closest_names_suggest_real_boards() {
        let db = Database::builtin().unwrap();
        let s = db.closest("unoo");
        assert!(s[0].contains("`uno`"), "{s:?}");
        let s = db.closest("esp32c");
        assert!(s.iter().any(|x| x.contains("esp32c3")), "{s:?}");
        assert!(db.closest("zzzzzzzz").is_empty());
    }
}
