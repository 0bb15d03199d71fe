//! The blinkies `nixflash new` makes, compiled to real firmware once per test binary (through
//! [`super::compile`]: Debian's rustc under ../shared/tools/firmware-env.sh, the target folder
//! every compiled project shares).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::{compile, tmp};

/// Renders a project named `fw` for `board` in `dir` with the real binary.
pub fn render(dir: &Path, board: &str) -> PathBuf {
    compile::render(dir, "fw", board).unwrap_or_else(|e| panic!("{e}"))
}

/// A rendered AVR blinky and its compiled ELF.
#[derive(Debug)]
pub struct Blinky {
    /// The project (package `fw`), for nixflash to run in.
    pub project: PathBuf,
    pub elf: PathBuf,
}

/// The blinky `nixflash new fw --board <board>` makes (in `target/tmp/blinky-<board>`),
/// compiled once per test binary, or why this machine cannot.
pub fn avr_blinky(board: &str) -> Result<&'static Blinky, String> {
    static BUILT: OnceLock<Mutex<HashMap<String, &'static Blinky>>> = OnceLock::new();
    // One build of each board: a second caller waits for the first.
    static BUILDING: Mutex<()> = Mutex::new(());
    let built = BUILT.get_or_init(Default::default);
    if let Some(b) = built.lock().unwrap().get(board) {
        return Ok(b);
    }
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = built.lock().unwrap().get(board) {
        return Ok(b);
    }
    let db = nixflash::board::Database::builtin().unwrap();
    let spec = db.get(board).map_err(|e| format!("{e:#}"))?;
    let recipe = compile::recipe(spec)?;
    if let Some(why) = compile::missing(&recipe) {
        return Err(why);
    }
    let dir = tmp().join(format!("blinky-{board}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let project = render(&dir, board);
    let elf = compile::compile(spec, &project, "fw")
        .unwrap_or_else(|e| panic!("compiling the {board} blinky: {e}"))
        .elf;
    let b: &'static Blinky = Box::leak(Box::new(Blinky { project, elf }));
    built.lock().unwrap().insert(board.to_string(), b);
    Ok(b)
}
