//! Loading the firmware's ELF for the monitor: checked against the board (its family's ELF
//! machine) and against the project's sources (an ELF older than them is stale). What goes
//! wrong is said in one status line each, and the monitor goes on without what failed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::defmt::Defmt;
use super::Decoder;
use crate::board::family::elf_machine_name;
use crate::board::Board;
use crate::firmware::symbols::Symbols;

/// Which firmware the monitor reads, and what it is checked against.
#[derive(Debug, Clone)]
pub struct Decode {
    /// The firmware's ELF.
    pub elf: PathBuf,
    /// The board the monitor talks to: the ELF must be for its family's processor.
    pub board: Option<Board>,
    /// The project the ELF is built from: source paths are shown relative to it, and an ELF
    /// older than its sources is used with a warning.
    pub project: Option<PathBuf>,
    /// The bytes come from an RTT channel (frames only), not from a serial port.
    pub rtt: bool,
}

/// The decoder, if the ELF can be used, and the status lines that say how it went.
pub struct Loaded {
    pub decoder: Option<Decoder>,
    pub notices: Vec<String>,
}

/// Reads and checks the ELF; never fails: what cannot be used is said in `notices`.
pub fn load(d: &Decode) -> Loaded {
    let mut notices = Vec::new();
    let name = shown(&d.elf);
    let not = |why: String| Loaded {
        decoder: None,
        notices: vec![format!(
            "Not decoding: {why}; the port's output is shown as it comes"
        )],
    };
    let data = match std::fs::read(&d.elf) {
        Ok(data) => data,
        Err(e) => return not(format!("cannot read {name} ({e})")),
    };
    let Some(elf) = crate::firmware::parse(&data) else {
        return not(format!("{name} is not an ELF file"));
    };
    let machine = crate::firmware::machine(&data).unwrap_or(0);
    if let Some(board) = &d.board {
        let family = board.family();
        if machine != family.elf_machine {
            // Which family's firmware it is: the board data says (on this error path only).
            let db = crate::board::Database::load(d.project.as_deref()).ok();
            return not(format!(
                "{name} is {} firmware (ELF machine {machine}), but the {} runs {} firmware",
                elf_machine_name(db.iter().flat_map(|db| db.families()), machine),
                board.name,
                family.machine_name()
            ));
        }
    }
    let root = d.project.as_deref();
    let symbols = Symbols::new(&elf, root);
    let defmt = match Defmt::load(&data, root, d.rtt) {
        Ok(found) => found,
        Err(why) => {
            notices.push(format!("Not decoding defmt frames: {name}: {why}"));
            None
        }
    };
    let nameless = !symbols.has_lines() && !symbols.has_functions();
    if nameless && defmt.is_none() {
        return not(format!(
            "{name} has neither symbols nor debug info (was it stripped?), so no address can be \
             named"
        ));
    }
    let mut what = if symbols.code().is_empty() {
        "it has no code sections, so no address is annotated".to_string()
    } else if nameless {
        "it has neither symbols nor debug info (was it stripped?), so no address is annotated"
            .to_string()
    } else if symbols.has_lines() {
        "addresses in its code are shown as functions and source lines".to_string()
    } else {
        "addresses in its code are shown as functions (it has no debug info for source lines)"
            .to_string()
    };
    if let Some(f) = &defmt {
        what.push_str(if f.has_locations() {
            "; defmt frames are decoded"
        } else {
            "; defmt frames are decoded (without source lines: no debug info)"
        });
    }
    notices.insert(0, format!("Decoding with {name}: {what}"));
    if let Some(project) = &d.project {
        if let Some(newer) = stale(&d.elf, project) {
            notices.push(format!(
                "Warning: {name} is older than {} (changed since that build): the functions \
                 and lines shown may be off; `nixflash build` makes a new one",
                shown(&newer)
            ));
        }
    }
    Loaded {
        decoder: Some(Decoder::new(symbols, defmt)),
        notices,
    }
}

/// The newest source file of `project` if it is newer than the ELF. The ELF's time is that of
/// the `result` link for the last build's ELF (files in the Nix store all have the same time),
/// unknown for other files in the Nix store, its own otherwise.
pub fn stale(elf: &Path, project: &Path) -> Option<PathBuf> {
    let elf = std::path::absolute(elf).ok()?;
    let result = project.join("result");
    let built = if elf.starts_with(&result) {
        std::fs::symlink_metadata(&result).ok()?.modified().ok()?
    } else {
        let real = elf.canonicalize().ok()?;
        if real.starts_with("/nix/store") {
            return None;
        }
        std::fs::metadata(&real).ok()?.modified().ok()?
    };
    let (when, newest) = newest_source(project)?;
    (when > built).then_some(newest)
}

/// The newest of the files a build reads: `src/`, Cargo.toml, Cargo.lock, build.rs.
fn newest_source(project: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut consider = |p: PathBuf| {
        if let Ok(t) = std::fs::metadata(&p).and_then(|m| m.modified()) {
            if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                newest = Some((t, p));
            }
        }
    };
    for f in ["Cargo.toml", "Cargo.lock", "build.rs"] {
        consider(project.join(f));
    }
    let mut dirs = vec![project.join("src")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => dirs.push(e.path()),
                Ok(t) if t.is_file() => consider(e.path()),
                _ => {}
            }
        }
    }
    newest
}

/// A path relative to the current folder when it is under it, as given otherwise.
/// A path as the user would write it: relative to the current folder when it is inside it.
pub fn shown(path: &Path) -> String {
    let rel = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf));
    rel.as_deref().unwrap_or(path).display().to_string()
}
