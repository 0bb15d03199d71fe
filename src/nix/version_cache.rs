//! The version of the nix at hand, remembered between runs: `nix --version` starts nix, which
//! takes tens of milliseconds (more behind a wrapper script), and a build would pay it each time
//! only to learn what it learned the time before.
//!
//! The version is kept with what identifies the binary it came from: its resolved path, size,
//! modification time and inode. Replacing or updating nix changes them (a Nix store path names
//! its version); a wrapper script whose target changes does not, so a failed nix command asks
//! again ([`super::Nix::recheck_version`]).

use std::path::{Path, PathBuf};

use crate::version::Version;

/// `$XDG_CACHE_HOME/nixflash/nix-version`, else `~/.cache/nixflash/nix-version`.
fn file() -> Option<PathBuf> {
    Some(
        crate::xdg::cache_home()?
            .join("nixflash")
            .join("nix-version"),
    )
}

/// What identifies the nix binary at `path` (found on PATH).
fn key(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let real = path.canonicalize().ok()?;
    let m = std::fs::metadata(&real).ok()?;
    Some(format!(
        "{} size={} mtime={}.{:09} ino={}",
        real.display(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ino()
    ))
}

/// The version remembered for the nix at `path`, if it is the same binary.
pub fn recall(path: &Path) -> Option<Version> {
    let text = std::fs::read_to_string(file()?).ok()?;
    let (version, kept) = text.trim_end().split_once(' ')?;
    (kept == key(path)?).then(|| Version::find_in(version))?
}

/// Remembers `v` for the nix at `path`; a cache that cannot be written is no error.
pub fn remember(path: &Path, v: Version) {
    let (Some(file), Some(key)) = (file(), key(path)) else {
        return;
    };
    let Some(dir) = file.parent() else {
        return;
    };
    let tmp = dir.join(format!(".nix-version.{}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, format!("{v} {key}\n")))
        .and_then(|()| std::fs::rename(&tmp, &file));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version is recalled for the same binary only: another file, or the same one changed,
    /// is asked again.
    #[test]
    fn a_version_is_recalled_for_the_same_binary_only() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::write(&a, "nix a").unwrap();
        std::fs::write(&b, "nix b").unwrap();
        let k = key(&a).unwrap();
        assert!(k.contains("size=5"), "{k}");
        assert_ne!(key(&a), key(&b));
        std::fs::write(&a, "nix a, updated").unwrap();
        assert_ne!(key(&a), Some(k));
    }
}
