//! The standard library's lock, for boards that build `core` from source (`-Z build-std`): cargo
//! then needs the crates `core` depends on, which the toolchain's own
//! `library/Cargo.lock` lists. Reading it out of the toolchain in the flake would be
//! import-from-derivation, so a project keeps a copy in [`STD_LOCK`], which [`sync`] keeps equal
//! to the pinned toolchain's (realising the flake's `packages.<system>.rust-src`), and records
//! what it was copied from in [`STD_LOCK_SOURCE`] so that an unchanged pin costs no nix call.

use std::path::{Path, PathBuf};

use crate::firmware::hash::sha256_hex;
use anyhow::Result;
use serde::Serialize;

use crate::board::Board;
use crate::error::{Failure, Kind};
use crate::git::Git;
use crate::nix::{build_failed, BuildOptions, Nix};
use crate::report::{Event, Reporter};
use crate::transaction::Transaction;

/// The copy of the standard library's Cargo.lock that build-std flakes read.
pub const STD_LOCK: &str = "nix/std-Cargo.lock";
/// What [`STD_LOCK`] was copied from, so an unchanged pin costs no nix call.
pub const STD_LOCK_SOURCE: &str = "nix/std-Cargo.lock.source";
/// Where rust-src keeps the standard library's lock.
pub const RUST_SRC_LOCK: &str = "lib/rustlib/src/rust/library/Cargo.lock";

/// What the pinned rust-src depends on, as one hash: rust-toolchain.toml (the channel) and the
/// rust-overlay node of flake.lock (the manifests). A flake.lock without a rust-overlay input
/// counts as a whole.
pub fn pin_key(flake_dir: &Path) -> String {
    let mut material = String::from("nixflash std-lock pin 1\n");
    for name in ["rust-toolchain.toml", "rust-toolchain"] {
        if let Ok(bytes) = std::fs::read(flake_dir.join(name)) {
            material.push_str(&format!("{name} {}\n", sha256_hex(&bytes)));
            break;
        }
    }
    match std::fs::read(flake_dir.join("flake.lock")) {
        Err(_) => material.push_str("flake.lock none\n"),
        Ok(bytes) => match overlay_node(&bytes) {
            Some(node) => material.push_str(&format!("rust-overlay {node}\n")),
            None => material.push_str(&format!("flake.lock {}\n", sha256_hex(&bytes))),
        },
    }
    sha256_hex(material.as_bytes())
}

/// The `locked` attributes of the node flake.lock's root uses as `rust-overlay`, as JSON with
/// sorted keys.
fn overlay_node(lock: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(lock).ok()?;
    crate::flake_lock::parse(text)
        .ok()?
        .remove("rust-overlay")
        .map(|l| l.json)
}

/// The record kept in [`STD_LOCK_SOURCE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StdLockSource {
    /// [`pin_key`] when the copy was made.
    pub pin: String,
    /// The rust-src store path it was copied from.
    pub rust_src: String,
    /// sha256 of the copy, to notice a hand-edited or checked-out-over copy.
    pub lock: String,
}

impl StdLockSource {
    fn read(flake_dir: &Path) -> Option<StdLockSource> {
        let text = std::fs::read_to_string(flake_dir.join(STD_LOCK_SOURCE)).ok()?;
        toml::from_str(&text).ok()
    }

    /// The file's text.
    fn text(&self) -> Result<String> {
        Ok(format!(
            "# Written by nixflash. nix/std-Cargo.lock is {RUST_SRC_LOCK} of the toolchain that\n\
             # rust-toolchain.toml pins (through rust-overlay, locked in flake.lock); -Z build-std \
             needs it.\n\
             # This file records what the copy was made from, so that `nixflash build` looks again\n\
             # only when the pin changes. Keep both files in git.\n{}",
            toml::to_string(self)?
        ))
    }
}

/// What the std-lock step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum StdLock {
    /// The board does not build std: no lock needed.
    NotNeeded,
    /// The pin is unchanged since the copy was made: nothing was run.
    Unchanged,
    /// rust-src was realised and the copy already matched it.
    Checked { rust_src: PathBuf },
    /// The copy was (re)written from rust-src.
    Updated { rust_src: PathBuf },
}

/// Keeps [`STD_LOCK`] equal to the pinned rust-src's library/Cargo.lock. Without `force`, an
/// unchanged pin (see [`pin_key`]) and an unchanged copy cost no nix call. The realisation's
/// progress and an update are reported to `reporter`.
pub fn sync(
    nix: &Nix,
    flake_dir: &Path,
    git: &Git,
    board: &Board,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<StdLock> {
    let lock_path = flake_dir.join(STD_LOCK);
    let current = std::fs::read(&lock_path).ok();
    let record = StdLockSource::read(flake_dir);
    if !opts.force_std_lock {
        if let (Some(rec), Some(cur)) = (&record, &current) {
            if rec.pin == pin_key(flake_dir) && rec.lock == sha256_hex(cur) {
                return Ok(StdLock::Unchanged);
            }
        }
    }

    let rust_src = match nix.realise(flake_dir, "rust-src", reporter)? {
        Ok(path) => path,
        Err(run) => {
            nix.recheck_version()?;
            return Err(anyhow::Error::new(build_failed(
                "nix build .#rust-src",
                run,
                reporter.shows_details(),
                &crate::nix::diagnosis_vars(flake_dir, git, board, &opts.nix_args),
            ))
            .context(
                "cannot get the pinned toolchain's rust-src, which nix/std-Cargo.lock is copied from",
            ));
        }
    };
    let src_lock = rust_src.join(RUST_SRC_LOCK);
    let fresh = std::fs::read(&src_lock).map_err(|e| {
        Failure::new(
            Kind::Flake,
            format!(
                "the flake's rust-src ({}) has no {RUST_SRC_LOCK}",
                rust_src.display()
            ),
        )
        .hint("`packages.<system>.rust-src` must be the toolchain's rust-src component")
        .because(e)
    })?;
    let changed = current.as_deref() != Some(fresh.as_slice());
    // Both files and their git-add, all or nothing.
    let mut tx = Transaction::new(flake_dir);
    if changed {
        tx.stage(Path::new(STD_LOCK), &fresh)?;
    }
    // The realisation may have written flake.lock (a first build): key on what is there now.
    let rec = StdLockSource {
        pin: pin_key(flake_dir),
        rust_src: rust_src.display().to_string(),
        lock: sha256_hex(&fresh),
    };
    if record.as_ref() != Some(&rec) {
        tx.stage(Path::new(STD_LOCK_SOURCE), rec.text()?.as_bytes())?;
    }
    tx.apply()?;
    let files = [PathBuf::from(STD_LOCK), PathBuf::from(STD_LOCK_SOURCE)];
    let added = match git {
        Git::Repo { .. } if opts.git_add => {
            tx.git_add(flake_dir, &[], &files, &[])?;
            ", and git-added it"
        }
        Git::Repo { .. } => {
            "; git-add it (--no-git-add): git add nix/std-Cargo.lock nix/std-Cargo.lock.source"
        }
        _ => "",
    };
    tx.commit();
    if changed {
        reporter.report(Event::step(
            "Updated",
            format!(
                "{STD_LOCK} to the standard library's lock of the pinned toolchain ({}){added}",
                channel(flake_dir).unwrap_or_else(|| "rust-src".to_string())
            ),
        ));
        Ok(StdLock::Updated { rust_src })
    } else {
        Ok(StdLock::Checked { rust_src })
    }
}

/// The channel rust-toolchain.toml pins, for messages.
pub fn channel(flake_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(flake_dir.join("rust-toolchain.toml")).ok()?;
    let t: toml::Table = text.parse().ok()?;
    t.get("toolchain")?
        .get("channel")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_key_follows_the_overlay_node_and_the_toolchain_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let none = pin_key(p);
        std::fs::write(
            p.join("rust-toolchain.toml"),
            "[toolchain]\nchannel = \"nightly-2025-04-27\"\n",
        )
        .unwrap();
        let with_toolchain = pin_key(p);
        assert_ne!(none, with_toolchain);
        let lock = |rev: &str, nixpkgs: &str| {
            format!(
                r#"{{"nodes":{{"root":{{"inputs":{{"rust-overlay":"rust-overlay","nixpkgs":"nixpkgs"}}}},
                "rust-overlay":{{"locked":{{"rev":"{rev}","type":"github"}}}},
                "nixpkgs":{{"locked":{{"rev":"{nixpkgs}","type":"github"}}}}}},"root":"root","version":7}}"#
            )
        };
        std::fs::write(p.join("flake.lock"), lock("a", "n1")).unwrap();
        let a = pin_key(p);
        // Another nixpkgs does not change rust-src.
        std::fs::write(p.join("flake.lock"), lock("a", "n2")).unwrap();
        assert_eq!(pin_key(p), a);
        std::fs::write(p.join("flake.lock"), lock("b", "n2")).unwrap();
        assert_ne!(pin_key(p), a);
        std::fs::write(
            p.join("rust-toolchain.toml"),
            "[toolchain]\nchannel = \"nightly-2025-05-01\"\n",
        )
        .unwrap();
        let b2 = pin_key(p);
        std::fs::write(p.join("flake.lock"), lock("b", "n2")).unwrap();
        assert_eq!(pin_key(p), b2);
    }
}
