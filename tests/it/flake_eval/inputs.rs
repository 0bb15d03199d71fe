//! The fixture trees as flake inputs: added to the Nix store once per run, with the flags that
//! evaluate a generated flake against them offline.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use super::{run, text};
use crate::common::offline::{fixture_tree, nix_offline, NixOffline, NIX_FEATURES};
use crate::common::skip;

/// The fixture trees of ../shared/fixtures in the Nix store, once per test run: crane and
/// rust-overlay where Nix looks for the pins of flake.lock, nixpkgs (slimmed, not byte-identical
/// to any real revision) as a store path to override the nixpkgs pin with.
pub(super) struct Inputs {
    pub(super) nixpkgs: String,
    /// nix-offline's environment (its HOME sends avr-hal's URL to the bundle) and its nixpkgs
    /// with the test overlay, for `nix flake check`.
    pub(super) offline: &'static NixOffline,
}

impl Inputs {
    /// No import-from-derivation, and the fixture nixpkgs for the pinned one.
    pub(super) fn eval_flags(&self) -> Vec<String> {
        let mut v: Vec<String> = NIX_FEATURES.iter().map(|s| s.to_string()).collect();
        v.extend(["--option", "allow-import-from-derivation", "false"].map(String::from));
        v.extend([
            "--override-input".into(),
            "nixpkgs".into(),
            self.nixpkgs.clone(),
        ]);
        v
    }

    pub(super) fn command(&self, program: &str, dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(dir);
        self.offline.env(&mut c);
        c
    }
}

fn add_to_store(dir: &Path) -> String {
    // A store path as input is hashed once here; a `path:` on a folder outside the store would be
    // re-hashed by every nix call.
    let out = run(
        Command::new("nix")
            .args(NIX_FEATURES)
            .args(["store", "add-path", "--name", "source"])
            .arg(dir),
        &format!("adding {} to the Nix store", dir.display()),
    );
    text(&out.stdout).trim().to_string()
}

/// The inputs, or None (after [`skip`]) when this machine cannot have them. The trees are added
/// to the store once per run.
pub(super) fn flake_inputs(test: &str) -> Option<&'static Inputs> {
    static INPUTS: OnceLock<Result<Inputs, String>> = OnceLock::new();
    let inputs = INPUTS.get_or_init(|| {
        let offline = nix_offline()?;
        let nixpkgs = crate::common::shared::once("fixture-trees-in-store", || {
            for tree in ["crane", "rust-overlay"] {
                add_to_store(&fixture_tree(tree)?);
            }
            Ok(add_to_store(&fixture_tree("nixpkgs")?))
        })?;
        Ok(Inputs {
            nixpkgs: format!("path:{nixpkgs}"),
            offline,
        })
    });
    match inputs {
        Ok(i) => Some(i),
        Err(why) => {
            skip(test, why);
            None
        }
    }
}

/// `nix hash path` of a tree.
pub(super) fn nar_hash(dir: &Path) -> String {
    let out = run(
        Command::new("nix")
            .args(NIX_FEATURES)
            .args(["hash", "path"])
            .arg(dir),
        &format!("nix hash path {}", dir.display()),
    );
    text(&out.stdout).trim().to_string()
}
