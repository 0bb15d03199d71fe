//! Regenerates `templates/locks/<name>.lock`: for one board per lock name (its family's
//! `files.lock`, or the one an option choice names, e.g. `{hal.feature}-defmt` for `--log defmt`)
//! it renders the project's sources, lets cargo resolve them (`cargo generate-lockfile`, which
//! needs crates.io and avr-hal's git repository), and keeps the dependencies part of the lock.
//!
//! Cargo resolves the crates as crates.io stood at [`PUBLISH_TIME`] (`--publish-time`, an
//! unstable flag: RUSTC_BOOTSTRAP=1 lets the stable cargo take it), so running it again gives the
//! same locks, and every lock of a chip the same version of each crate they share. To take newer
//! crates, move [`PUBLISH_TIME`] forward and run it for every lock.
//!
//!     cargo run --example update-locks                  # every lock
//!     cargo run --example update-locks -- esp32c3       # only this one
//!     cargo run --example update-locks -- esp32c3-defmt
//!
//! Without access to GitHub, point git at a mirror of avr-hal first, for example
//!     git config --global url.file:///path/to/avr-hal.insteadOf https://github.com/rahix/avr-hal
//! and set CARGO_NET_GIT_FETCH_WITH_CLI=true.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use nixflash::board::Database;
use nixflash::render::{lock_name, render_sources, Project};

const ROOT: &str = "nixflash-lock-root";

/// Crates published after this are not taken.
const PUBLISH_TIME: &str = "2026-11-20T00:00:00Z";

fn main() -> Result<()> {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let db = Database::builtin()?;
    // Every lock a project can need: the default project's, and each option choice's.
    let mut by_lock = BTreeMap::new();
    for b in db.boards() {
        for p in Project::variants(b, ROOT) {
            by_lock.entry(lock_name(b, &p)?).or_insert((b, p));
        }
    }
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/locks");
    std::fs::create_dir_all(&out_dir)?;
    for (name, (board, project)) in by_lock {
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let dir = tempfile::tempdir()?;
        for f in render_sources(board, &project)? {
            let p = dir.path().join(&f.path);
            std::fs::create_dir_all(p.parent().unwrap())?;
            std::fs::write(&p, &f.contents)?;
        }
        let status = Command::new("cargo")
            .args([
                "generate-lockfile",
                "-Zunstable-options",
                "--publish-time",
                PUBLISH_TIME,
            ])
            .env("RUSTUP_TOOLCHAIN", "stable")
            .env("RUSTC_BOOTSTRAP", "1")
            .current_dir(dir.path())
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!(
                "cargo generate-lockfile failed for {name} (board {})",
                board.id
            );
        }
        let lock = std::fs::read_to_string(dir.path().join("Cargo.lock"))?;
        let from = format!("[[package]]\nname = \"{ROOT}\"\nversion = \"0.1.0\"\n");
        if !lock.contains(&from) {
            bail!("the lock for {name} has no entry for the package itself");
        }
        let lock = lock.replace(&from, "[[package]]\nname = \"@root\"\n");
        std::fs::write(out_dir.join(format!("{name}.lock")), lock)?;
        println!("templates/locks/{name}.lock (from board {})", board.id);
    }
    Ok(())
}
