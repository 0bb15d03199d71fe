//! Running git. A flake only sees the files git tracks, so `new`, `init` and `build` git-add.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Result};

/// The error for a git that cannot be started.
pub fn spawn_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "git is not installed\nhint: install git (a flake only sees files git tracks), or \
             pass --no-git"
        )
    } else {
        anyhow::Error::new(e).context("cannot run git")
    }
}

/// Runs `git <args>` in `dir` and returns its standard output; a failure carries git's message.
pub fn run(dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(spawn_error)?;
    if !out.status.success() {
        bail!(
            "`git {}` failed in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// `git add <flags> -- <files>` in `dir` (paths relative to it); nothing to add runs nothing.
pub fn add(dir: &Path, flags: &[&str], files: &[PathBuf]) -> Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut args = vec!["add"];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend(names.iter().map(String::as_str));
    run(dir, &args).map(|_| ())
}
