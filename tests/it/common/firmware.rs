//! Real firmware for the tests: projects rendered by the nixflash binary and compiled by the
//! machine's cargo with Debian's rustc (`../shared/tools/firmware-env.sh`), each built once per
//! test run (by the first test that asks, in whichever test process) and kept under
//! `CARGO_TARGET_TMPDIR`.
//!
//! The `-Z build-std` and linker overrides are given on the command line, not written into the
//! templates: the templates are right for rustup and Nix users. The AVR boards' arduino-hal comes
//! from the avr-hal bundle in ../shared/fixtures (git's `insteadOf`), since GitHub is unreachable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::compile;
use super::process::{run_bounded, text};
use super::{fixtures, nixflash, shared, skip, tmp};

/// Which project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `nixflash new fw --board esp32c3` as it is.
    Esp32c3,
    /// `nixflash new fw --board esp32c3 -o log=defmt` as it is.
    Esp32c3Defmt,
    /// `nixflash new fw --board esp32c3 -o alloc`: the blocking blinky with a heap.
    Esp32c3Alloc,
    /// `nixflash new fw --board esp32c3 -o wifi` (which turns on async=embassy and alloc).
    Esp32c3Wifi,
    /// `nixflash new fw --board esp32c3 -o wifi -o log=defmt`.
    Esp32c3WifiDefmt,
    /// `nixflash new fw --board esp32c2 -o wifi -o log=defmt`.
    Esp32c2WifiDefmt,
    /// `nixflash new fw --board esp32c6 -o wifi`.
    Esp32c6WifiDefmt,
    /// `nixflash new fw --board esp32h2 -o async=embassy -o alloc -o log=defmt`.
    Esp32h2EmbassyAllocDefmt,
    /// The ESP32-C3 project with tests/fixtures/firmware/esp32c3-addresses.rs as src/main.rs.
    Esp32c3Addresses,
    /// `nixflash new fw --board uno` as it is.
    Uno,
    /// The Uno project with tests/fixtures/firmware/uno-addresses.rs as src/main.rs.
    UnoAddresses,
    /// `nixflash new fw --board mega2560` as it is.
    Mega2560,
    /// `nixflash new fw --board leonardo` as it is.
    Leonardo,
    /// `nixflash new fw --board pico` as it is.
    Pico,
    /// `nixflash new fw --board pico2` as it is.
    Pico2,
    /// `nixflash new fw --board pico -o async=embassy` as it is.
    PicoEmbassy,
    /// `nixflash new fw --board pico2 -o async=embassy` as it is.
    Pico2Embassy,
    /// The micro:bit v2's blinky as it is (`nixflash new fw-microbit-v2 --board microbit-v2`,
    /// shared with the all-boards test: [`compile::board_blinky`]).
    MicrobitV2,
}

/// A built project: its folder (package `fw`), a copy of its ELF, and its board's id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Built {
    pub project: PathBuf,
    pub elf: PathBuf,
    pub board: String,
}

impl Kind {
    /// The board's id.
    pub fn board(self) -> &'static str {
        match self {
            Kind::Esp32c3
            | Kind::Esp32c3Defmt
            | Kind::Esp32c3Addresses
            | Kind::Esp32c3Alloc
            | Kind::Esp32c3Wifi
            | Kind::Esp32c3WifiDefmt => "esp32c3",
            Kind::Esp32c2WifiDefmt => "esp32c2",
            Kind::Esp32c6WifiDefmt => "esp32c6",
            Kind::Esp32h2EmbassyAllocDefmt => "esp32h2",
            Kind::Uno | Kind::UnoAddresses => "uno",
            Kind::Mega2560 => "mega2560",
            Kind::Leonardo => "leonardo",
            Kind::Pico | Kind::PicoEmbassy => "pico",
            Kind::Pico2 | Kind::Pico2Embassy => "pico2",
            Kind::MicrobitV2 => "microbit-v2",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Esp32c3 => "esp32c3",
            Kind::Esp32c3Defmt => "esp32c3-defmt",
            Kind::Esp32c3Addresses => "esp32c3-addresses",
            Kind::Esp32c3Alloc => "esp32c3-alloc",
            Kind::Esp32c3Wifi => "esp32c3-wifi",
            Kind::Esp32c3WifiDefmt => "esp32c3-wifi-defmt",
            Kind::Esp32c2WifiDefmt => "esp32c2-wifi-defmt",
            Kind::Esp32c6WifiDefmt => "esp32c6-wifi-defmt",
            Kind::Esp32h2EmbassyAllocDefmt => "esp32h2-embassy-alloc-defmt",
            Kind::Uno => "uno",
            Kind::UnoAddresses => "uno-addresses",
            Kind::Mega2560 => "mega2560",
            Kind::Leonardo => "leonardo",
            Kind::Pico => "pico",
            Kind::Pico2 => "pico2",
            Kind::PicoEmbassy => "pico-embassy",
            Kind::Pico2Embassy => "pico2-embassy",
            Kind::MicrobitV2 => "microbit-v2",
        }
    }

    /// The `-o <option>=<choice>` arguments of `nixflash new`.
    pub fn options(self) -> &'static [&'static str] {
        match self {
            Kind::Esp32c3Defmt => &["-o", "log=defmt"],
            Kind::PicoEmbassy | Kind::Pico2Embassy => &["-o", "async=embassy"],
            Kind::Esp32c3Alloc => &["-o", "alloc"],
            Kind::Esp32c3Wifi => &["-o", "wifi"],
            Kind::Esp32c3WifiDefmt | Kind::Esp32c2WifiDefmt | Kind::Esp32c6WifiDefmt => {
                &["-o", "wifi", "-o", "log=defmt"]
            }
            Kind::Esp32h2EmbassyAllocDefmt => {
                &["-o", "async=embassy", "-o", "alloc", "-o", "log=defmt"]
            }
            _ => &[],
        }
    }
}

pub const ELFCLASS32: u8 = 1;
pub const EM_AVR: u16 = 83;
pub const EM_RISCV: u16 = 243;
pub const EM_ARM: u16 = 40;

/// Builds `kind` once per test run; `Err(why)` when this machine cannot (for `skip`).
pub fn build(kind: Kind) -> Result<Built, String> {
    shared::once(&format!("firmware-{}", kind.name()), || build_now(kind))
}

fn build_now(kind: Kind) -> Result<Built, String> {
    // Said before anything is written: this machine may lack the tools.
    let db = nixflash::board::Database::builtin().unwrap();
    let board = db.get(kind.board()).map_err(|e| format!("{e:#}"))?;
    if let Some(why) = compile::missing(&compile::recipe(board)?) {
        return Err(why);
    }
    if kind == Kind::MicrobitV2 {
        // The board's blinky as it is: the one the all-boards test compiles (once per run).
        let blinky = compile::board_blinky(board)?;
        return Ok(Built {
            project: blinky.project,
            elf: blinky.compiled.elf,
            board: board.id.clone(),
        });
    }
    let dir = tmp().join("firmware").join(kind.name());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = vec!["new", "fw", "--board", kind.board(), "--no-git"];
    args.extend(kind.options());
    let o = run_bounded(
        nixflash()
            .args(&args)
            .current_dir(&dir)
            .env("XDG_CONFIG_HOME", dir.join(".cfg")),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "nixflash new: {:?}", text(&o));
    let project = dir.join("fw");
    let fixture = match kind {
        Kind::Esp32c3Addresses => Some("esp32c3-addresses.rs"),
        Kind::UnoAddresses => Some("uno-addresses.rs"),
        _ => None,
    };
    if let Some(f) = fixture {
        std::fs::copy(
            fixtures().join("firmware").join(f),
            project.join("src/main.rs"),
        )
        .unwrap();
    }
    let compiled = compile::compile(board, &project, "fw")?;
    let size = nixflash::firmware::size::analyze_file(&compiled.elf, board)
        .map_err(|e| format!("{e:#}"))?;
    super::measured(&format!(
        "firmware {} ({}): compiled in {:.1} s ({:.1} s of CPU); flash {} of {} bytes, RAM {} \
         of {} bytes",
        kind.name(),
        kind.options().join(" "),
        compiled.took.as_secs_f64(),
        compiled.cpu.as_secs_f64(),
        size.flash.used,
        size.flash.total,
        size.ram.used,
        size.ram.total
    ));
    if !size.fits() {
        return Err(format!(
            "the {} firmware does not fit the {}: flash {} of {} bytes, RAM {} of {}",
            kind.name(),
            board.id,
            size.flash.used,
            size.flash.total,
            size.ram.used,
            size.ram.total
        ));
    }
    Ok(Built {
        project,
        elf: compiled.elf,
        board: board.id.clone(),
    })
}

/// Compiles the AVR project at `project` (arduino-hal from the avr-hal bundle) with the real
/// compiler for `test`: its ELF `bin`, or None after [`skip`].
pub fn compile_avr(test: &str, project: &Path, bin: &str) -> Option<PathBuf> {
    compile_for(test, "uno", project, bin)
}

/// Compiles the ESP32-C3 project at `project` with the real compiler for `test`: its ELF `bin`,
/// or None after [`skip`].
pub fn compile_esp32c3(test: &str, project: &Path, bin: &str) -> Option<PathBuf> {
    compile_for(test, "esp32c3", project, bin)
}

fn compile_for(test: &str, board: &str, project: &Path, bin: &str) -> Option<PathBuf> {
    let db = nixflash::board::Database::builtin().unwrap();
    let board = db.get(board).unwrap();
    let recipe = compile::recipe(board).unwrap();
    if let Some(why) = compile::missing(&recipe) {
        skip(test, &why);
        return None;
    }
    let compiled = compile::compile(board, project, bin).unwrap_or_else(|e| panic!("{e}"));
    Some(compiled.elf)
}

/// ELF class and machine of a file.
pub fn elf_machine(path: &Path) -> (u8, u16) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not an ELF", path.display());
    (bytes[4], u16::from_le_bytes([bytes[18], bytes[19]]))
}

/// The line number (from 1) of the only line of `file` that contains `marker`.
pub fn line_of(file: &Path, marker: &str) -> u32 {
    let text = std::fs::read_to_string(file).unwrap();
    let found: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(marker))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(found.len(), 1, "{marker} in {}: {found:?}", file.display());
    found[0] as u32
}
