//! `nixflash verify`'s rebuild: `nix build .#default --rebuild` builds the firmware derivation
//! once more (the project's crate, compiled and linked; the dependencies' derivation is reused)
//! and Nix compares the new output with the one in the store. When they differ, Nix keeps the
//! new one as `<out>.check` (with `--keep-failed`): its ELF is compared with the build's section
//! by section, the other files of the output are named, and the `.check` path is deleted again
//! unless it is to be kept.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::{build_failed, diagnosis_vars, flake_dir, BuildOptions, Built, Nix};
use crate::board::Board;
use crate::firmware::compare::{self, Comparison};
use crate::git::Git;
use crate::interrupt;
use crate::manifest::Manifest;
use crate::report::{Event, Reporter};

/// What the rebuild found.
#[derive(Debug, Clone, Serialize)]
pub struct Rebuilt {
    /// Whether Nix found the rebuild's output identical to the build's, file for file.
    pub identical: bool,
    /// The rebuild's ELF compared with the build's (`None` when identical, or when the rebuild
    /// has no such file).
    pub comparison: Option<Comparison>,
    /// The SHA-256 of the rebuild's ELF, when it differs.
    pub sha256: Option<String>,
    /// The other files of the output that differ, or that only one of the two has (relative to
    /// the output, e.g. `share/doc.txt`).
    pub other_files: Vec<String>,
    /// The rebuild's output that Nix kept when it differs (`<out>.check`).
    pub check: Option<PathBuf>,
    /// Whether it is still in the store (kept as asked, or its deletion failed).
    pub kept: bool,
    /// Why the `.check` output could not be deleted, if it could not.
    pub delete_failed: Option<String>,
    /// The build folder Nix kept after a rebuild that differs (`--keep-failed`), and whether it
    /// was removed.
    pub build_dir: Option<PathBuf>,
    pub build_dir_removed: bool,
}

/// What Nix's error says when the rebuild differs: the `.check` path it kept, if it says one
/// (`output '<out>' differs from '<out>.check'`; without `--keep-failed`, only `differs`).
fn not_deterministic(log: &str) -> Option<Option<PathBuf>> {
    let line = log
        .lines()
        .find(|l| l.contains("may not be deterministic: output '"))?;
    let check = line
        .split_once(" differs from '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(p, _)| PathBuf::from(p));
    Some(check)
}

/// The build folders Nix says it kept (`note: keeping build directory '<dir>'`).
fn kept_build_dirs(log: &str) -> Vec<PathBuf> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split_once("keeping build directory '")?.1;
            Some(PathBuf::from(rest.split_once('\'')?.0))
        })
        .collect()
}

/// Rebuilds the firmware `built` (as [`super::build`] made it for `manifest` and `board`, with
/// `opts`) and compares: see the module's text. With `keep`, the rebuild's output stays in the
/// store when it differs.
pub fn rebuild(
    manifest: &Manifest,
    board: &Board,
    opts: &BuildOptions,
    built: &Built,
    keep: bool,
    reporter: &dyn Reporter,
) -> Result<Rebuilt> {
    let nix = Nix::find(opts.verbose)?.with_args(&opts.nix_args);
    let flake_dir = flake_dir(manifest)?;
    reporter.report(Event::step(
        "Rebuilding",
        format!(
            "the firmware derivation of {} with nix, to compare (its dependencies' build is \
             reused)…",
            manifest.name
        ),
    ));
    let args = [
        "build",
        ".#default",
        "--rebuild",
        "--keep-failed",
        "--no-link",
        "--json",
    ];
    let title = format!("rebuilding {}", manifest.name);
    let run = nix.run(&flake_dir, &args, &title, reporter)?;
    interrupt::check()?;
    let build_dir = kept_build_dirs(&run.stderr).into_iter().next();
    let build_dir_removed = build_dir
        .as_ref()
        .is_some_and(|d| std::fs::remove_dir_all(d).is_ok() || !d.exists());
    let mut rebuilt = Rebuilt {
        identical: true,
        comparison: None,
        sha256: None,
        other_files: Vec::new(),
        check: None,
        kept: false,
        delete_failed: None,
        build_dir,
        build_dir_removed,
    };
    if run.success() {
        return Ok(rebuilt);
    }
    let Some(check) = not_deterministic(&run.stderr) else {
        let git = Git::of(&flake_dir);
        let vars = diagnosis_vars(&flake_dir, &git, board, &opts.nix_args);
        let command = "nix build .#default --rebuild";
        return Err(build_failed(command, run, reporter.shows_details(), &vars).into());
    };
    rebuilt.identical = false;
    let Some(check) = check else {
        return Ok(rebuilt);
    };
    let elf_rel = built.elf.strip_prefix(&built.out).unwrap_or(&built.elf);
    let other = check.join(elf_rel);
    if let (Ok(a), Ok(b)) = (std::fs::read(&built.elf), std::fs::read(&other)) {
        rebuilt.comparison = Some(compare::compare(&a, &b)?);
        rebuilt.sha256 = Some(crate::firmware::hash::sha256_hex(&b));
    }
    rebuilt.other_files = differing_files(&built.out, &check)
        .into_iter()
        .filter(|f| Path::new(f) != elf_rel)
        .collect();
    rebuilt.kept = keep;
    if !keep {
        if let Err(why) = delete(&nix, &flake_dir, &check) {
            rebuilt.kept = true;
            rebuilt.delete_failed = Some(why);
        }
    }
    rebuilt.check = Some(check);
    Ok(rebuilt)
}

/// `nix store delete <path>`: Ok, or what went wrong.
fn delete(nix: &Nix, flake_dir: &Path, path: &Path) -> std::result::Result<(), String> {
    let out = nix
        .command(flake_dir, &["store", "delete"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run nix: {e}"))?;
    if out.success() && !path.exists() {
        return Ok(());
    }
    let lines = super::relevant_lines(&out.stderr, 3);
    Err(match lines.join(" ") {
        s if s.is_empty() => format!("`nix store delete` ended with exit code {}", out.code()),
        s => s,
    })
}

/// The files (and links) under `root`, relative to it.
fn files(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(p),
                Ok(_) => {
                    out.insert(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
                }
                Err(_) => {}
            }
        }
    }
    out
}

/// The files that differ between the trees `a` and `b`, or that only one has.
fn differing_files(a: &Path, b: &Path) -> Vec<String> {
    let (fa, fb) = (files(a), files(b));
    let read = |root: &Path, rel: &Path| {
        let p = root.join(rel);
        match std::fs::read_link(&p) {
            Ok(target) => Some(target.into_os_string().into_encoded_bytes()),
            Err(_) => std::fs::read(&p).ok(),
        }
    };
    fa.union(&fb)
        .filter(|rel| !fa.contains(*rel) || !fb.contains(*rel) || read(a, rel) != read(b, rel))
        .map(|rel| rel.display().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_nix_says_of_a_rebuild_that_differs() {
        // Nix 2.26, `nix build --rebuild --keep-failed` of a derivation writing random bytes.
        let log = "checking outputs of '/nix/store/5sx6-rnd.drv'...\n\
            note: keeping build directory '/tmp/nix-build-rnd.drv-0'\n\
            error: derivation '/nix/store/5sx6-rnd.drv' may not be deterministic: output \
            '/nix/store/c9fv-rnd' differs from '/nix/store/c9fv-rnd.check'";
        assert_eq!(
            not_deterministic(log),
            Some(Some(PathBuf::from("/nix/store/c9fv-rnd.check")))
        );
        assert_eq!(
            kept_build_dirs(log),
            [PathBuf::from("/tmp/nix-build-rnd.drv-0")]
        );
        // Without --keep-failed, Nix keeps no .check output.
        let log = "error: derivation '/nix/store/5sx6-rnd.drv' may not be deterministic: output \
            '/nix/store/c9fv-rnd' differs";
        assert_eq!(not_deterministic(log), Some(None));
        assert_eq!(
            not_deterministic("error: builder for '/nix/store/x.drv' failed"),
            None
        );
    }

    #[test]
    fn files_that_differ_between_two_outputs() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        for (root, doc, extra) in [(&a, "one", false), (&b, "two", true)] {
            std::fs::create_dir_all(root.join("bin")).unwrap();
            std::fs::create_dir_all(root.join("share")).unwrap();
            std::fs::write(root.join("bin/fw.elf"), b"same").unwrap();
            std::fs::write(root.join("share/doc.txt"), doc).unwrap();
            if extra {
                std::fs::write(root.join("share/new"), b"").unwrap();
            }
        }
        assert_eq!(differing_files(&a, &b), ["share/doc.txt", "share/new"]);
        assert!(differing_files(&a, &a).is_empty());
    }
}
