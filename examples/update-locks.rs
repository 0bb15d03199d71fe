//! Regenerates `templates/locks/<name>.lock`, the name from the family's `files.lock` (the HAL
//! feature, or the chip): for one board per lock it renders the project's sources, lets cargo
//! resolve them (`cargo generate-lockfile`, which needs crates.io and avr-hal's git repository),
//! and keeps the dependencies part of the lock.
//!
//!     cargo run --example update-locks            # every lock
//!     cargo run --example update-locks -- esp32c3  # only this one
//!
//! Without access to GitHub, point git at a mirror of avr-hal first, for example
//!     git config --global url.file:///path/to/avr-hal.insteadOf https://github.com/rahix/avr-hal
//! and set CARGO_NET_GIT_FETCH_WITH_CLI=true.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use nixflash::board::Database;
use nixflash::render::{render_sources, Project};

const ROOT: &str = "nixflash-lock-root";

fn main() -> Result<()> {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let db = Database::builtin()?;
    let mut by_feature = BTreeMap::new();
    for b in db.boards() {
        let name = b.fill(&b.family().files.lock, &[])?;
        by_feature.entry(name).or_insert(b);
    }
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/locks");
    std::fs::create_dir_all(&out_dir)?;
    for (feature, board) in by_feature {
        if !only.is_empty() && !only.contains(&feature) {
            continue;
        }
        let dir = tempfile::tempdir()?;
        for f in render_sources(board, &Project::new(ROOT))? {
            let p = dir.path().join(&f.path);
            std::fs::create_dir_all(p.parent().unwrap())?;
            std::fs::write(&p, &f.contents)?;
        }
        let status = Command::new("cargo")
            .args(["generate-lockfile"])
            .env("RUSTUP_TOOLCHAIN", "stable")
            .current_dir(dir.path())
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!(
                "cargo generate-lockfile failed for {feature} (board {})",
                board.id
            );
        }
        let lock = std::fs::read_to_string(dir.path().join("Cargo.lock"))?;
        let from = format!("[[package]]\nname = \"{ROOT}\"\nversion = \"0.1.0\"\n");
        if !lock.contains(&from) {
            bail!("the lock for {feature} has no entry for the package itself");
        }
        let lock = lock.replace(&from, "[[package]]\nname = \"@root\"\n");
        std::fs::write(out_dir.join(format!("{feature}.lock")), lock)?;
        println!("templates/locks/{feature}.lock (from board {})", board.id);
    }
    Ok(())
}
