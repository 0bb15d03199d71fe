//! Writing files all or nothing, git's index included.
//!
//! Every new file is written beside its destination first (a hidden `.NAME.nixflash-PID`). Then,
//! in [`Transaction::apply`], each original is moved aside (a rename: no disk space needed, so it
//! works on a full disk), the new file renamed into place, and each file to remove moved aside
//! too. [`Transaction::git_add`] keeps git's index by a hard link before git changes it. A
//! failure, a full disk or a signal (see [`crate::interrupt`]) at any step, and any error after,
//! until [`Transaction::commit`]: dropping the transaction undoes every step in reverse, and the
//! folder is as it was, with no temporary file left. `commit` deletes what was moved aside,
//! except the originals the user is to keep ([`Transaction::keep_original`]).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::git;
use crate::interrupt;

/// One step done, and how to undo it.
#[derive(Debug)]
enum Undo {
    /// A file staged beside its destination: removed.
    Staged(PathBuf),
    /// A folder created: removed if empty.
    Dir(PathBuf),
    /// A folder made with its contents (a staging folder, git's `.git`): removed with them.
    Tree(PathBuf),
    /// A file put where there was none: removed.
    Created(PathBuf),
    /// An original moved aside: moved back over whatever is at `dest`.
    Aside {
        dest: PathBuf,
        aside: PathBuf,
        keep: bool,
    },
    /// git's index as it was (a hard link), or None when there was none.
    Index {
        index: PathBuf,
        before: Option<PathBuf>,
    },
}

/// Files to write and remove under `root`, all or nothing (see the module's documentation).
#[derive(Debug)]
pub struct Transaction {
    root: PathBuf,
    /// Staged files: (path relative to root, the staged copy).
    writes: Vec<(PathBuf, PathBuf)>,
    removes: Vec<PathBuf>,
    /// Files whose originals are kept, and where (both relative to root).
    keep: Vec<(PathBuf, PathBuf)>,
    undo: Vec<Undo>,
    done: bool,
}

/// `path`'s hidden sibling for nixflash's own use: `.NAME.nixflash-TAG-PID`.
fn sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(".{name}.nixflash-{tag}{}", std::process::id()))
}

impl Transaction {
    pub fn new(root: &Path) -> Transaction {
        Transaction {
            root: root.to_path_buf(),
            writes: Vec::new(),
            removes: Vec::new(),
            keep: Vec::new(),
            undo: Vec::new(),
            done: false,
        }
    }

    /// Creates `dir` and the folders above it that are missing; undone by removing them.
    pub fn create_dirs(&mut self, dir: &Path) -> Result<()> {
        let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        for d in missing.into_iter().rev() {
            if d.as_os_str().is_empty() {
                continue;
            }
            interrupt::check()?;
            fs::create_dir(d).with_context(|| format!("cannot create {}", d.display()))?;
            self.undo.push(Undo::Dir(d.to_path_buf()));
        }
        Ok(())
    }

    /// A folder about to be made with contents (by this process or a child): removed with them if
    /// the transaction is undone.
    pub fn made_tree(&mut self, dir: &Path) {
        self.undo.push(Undo::Tree(dir.to_path_buf()));
    }

    /// Writes `contents` beside `rel` (relative to the root), to be renamed into place by
    /// [`Self::apply`].
    pub fn stage(&mut self, rel: &Path, contents: &[u8]) -> Result<()> {
        interrupt::check()?;
        let dest = self.root.join(rel);
        if let Some(d) = dest.parent() {
            self.create_dirs(d)?;
        }
        let tmp = sibling(&dest, "");
        // Recorded before it is written: a write cut short by a full disk is removed too.
        self.undo.push(Undo::Staged(tmp.clone()));
        fs::write(&tmp, contents).with_context(|| format!("cannot write {}", dest.display()))?;
        self.writes.push((rel.to_path_buf(), tmp));
        Ok(())
    }

    /// `rel` is to be removed by [`Self::apply`].
    pub fn remove(&mut self, rel: &Path) {
        self.removes.push(rel.to_path_buf());
    }

    /// The original of `rel`, which [`Self::apply`] replaces, is kept for the user under a free
    /// name beside it (`flake.nix.orig`, else `flake.nix.orig.2`, ...): that name, relative to
    /// the root.
    pub fn keep_original(&mut self, rel: &Path) -> PathBuf {
        let taken = |p: &Path| {
            self.root.join(p).symlink_metadata().is_ok() || self.keep.iter().any(|(_, k)| k == p)
        };
        let mut n = 1;
        let copy = loop {
            let mut name = rel.as_os_str().to_os_string();
            name.push(".orig");
            if n > 1 {
                name.push(format!(".{n}"));
            }
            let p = PathBuf::from(name);
            if !taken(&p) {
                break p;
            }
            n += 1;
        };
        self.keep.push((rel.to_path_buf(), copy.clone()));
        copy
    }

    /// Moves the staged files into place and the removed ones aside.
    pub fn apply(&mut self) -> Result<()> {
        interrupt::check()?;
        for (rel, tmp) in std::mem::take(&mut self.writes) {
            let dest = self.root.join(&rel);
            let had = dest.symlink_metadata().is_ok();
            if had {
                self.move_aside(&rel)?;
            }
            fs::rename(&tmp, &dest).with_context(|| format!("cannot write {}", dest.display()))?;
            if !had {
                self.undo.push(Undo::Created(dest));
            }
        }
        for rel in std::mem::take(&mut self.removes) {
            self.move_aside(&rel)
                .with_context(|| format!("cannot remove {}", rel.display()))?;
        }
        interrupt::check()
    }

    fn move_aside(&mut self, rel: &Path) -> Result<()> {
        let dest = self.root.join(rel);
        let kept = self.keep.iter().find(|(r, _)| r == rel).map(|(_, k)| k);
        let aside = match kept {
            Some(k) => self.root.join(k),
            None => sibling(&dest, "old-"),
        };
        fs::rename(&dest, &aside).with_context(|| format!("cannot move {}", dest.display()))?;
        self.undo.push(Undo::Aside {
            dest,
            aside,
            keep: kept.is_some(),
        });
        Ok(())
    }

    /// A copy of `rel` as it is now, for another program to change (nix writes flake.lock): put
    /// back if the transaction is undone (and removed if there was none).
    pub fn back_up(&mut self, rel: &Path) -> Result<()> {
        let dest = self.root.join(rel);
        if !dest.exists() {
            self.undo.push(Undo::Created(dest));
            return Ok(());
        }
        let aside = sibling(&dest, "old-");
        self.undo.push(Undo::Staged(aside.clone()));
        fs::copy(&dest, &aside).with_context(|| format!("cannot copy {}", dest.display()))?;
        self.undo.pop();
        self.undo.push(Undo::Aside {
            dest,
            aside,
            keep: false,
        });
        Ok(())
    }

    /// Keeps git's index (of the work tree around `dir`) as it is now, for git or another program
    /// (nix marks a flake.lock it creates intent-to-add) to change: put back if undone.
    pub fn back_up_index(&mut self, dir: &Path) -> Result<()> {
        let out = git::run(dir, &["rev-parse", "--git-path", "index"])?;
        let index = dir.join(String::from_utf8_lossy(&out).trim());
        let before = if index.exists() {
            let keep = sibling(&index, &format!("{}-", self.undo.len()));
            let _ = fs::remove_file(&keep);
            if fs::hard_link(&index, &keep).is_err() {
                fs::copy(&index, &keep).context("cannot keep a copy of git's index")?;
            }
            Some(keep)
        } else {
            None
        };
        self.undo.push(Undo::Index { index, before });
        Ok(())
    }

    /// `git add <flags>` of `add` and `git rm --cached` of `untrack` (those git tracks), in the
    /// work tree around `dir` (paths relative to `dir`); the index as it was is kept until the
    /// commit.
    pub fn git_add(
        &mut self,
        dir: &Path,
        flags: &[&str],
        add: &[PathBuf],
        untrack: &[PathBuf],
    ) -> Result<()> {
        interrupt::check()?;
        self.back_up_index(dir)?;
        git::add(dir, flags, add)?;
        if !untrack.is_empty() {
            let names: Vec<String> = untrack.iter().map(|p| p.display().to_string()).collect();
            let mut args = vec!["ls-files", "-z", "--"];
            args.extend(names.iter().map(String::as_str));
            let tracked: Vec<String> = git::run(dir, &args)?
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            if !tracked.is_empty() {
                let mut args = vec!["rm", "-q", "--cached", "--"];
                args.extend(tracked.iter().map(String::as_str));
                git::run(dir, &args)?;
            }
        }
        interrupt::check()
    }

    /// Everything is in place: what was moved aside goes (but the originals kept for the user).
    pub fn commit(mut self) {
        self.done = true;
        for u in std::mem::take(&mut self.undo) {
            match u {
                Undo::Aside {
                    aside, keep: false, ..
                } => {
                    let _ = fs::remove_file(&aside);
                }
                Undo::Index {
                    before: Some(b), ..
                } => {
                    let _ = fs::remove_file(&b);
                }
                _ => {}
            }
        }
    }

    fn undo(&mut self) {
        while let Some(u) = self.undo.pop() {
            let _ = match u {
                Undo::Staged(p) | Undo::Created(p) => fs::remove_file(p),
                Undo::Dir(d) => fs::remove_dir(d),
                Undo::Tree(d) => fs::remove_dir_all(d),
                Undo::Aside { dest, aside, .. } => fs::rename(aside, dest),
                Undo::Index {
                    index,
                    before: Some(b),
                } => {
                    // When git did not replace the index, both names are links to one file and
                    // rename(2) does nothing: the extra link goes.
                    let r = fs::rename(&b, index);
                    let _ = fs::remove_file(&b);
                    r
                }
                Undo::Index {
                    index,
                    before: None,
                } => fs::remove_file(index),
            };
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.done {
            self.undo();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = walk(dir, dir);
        v.sort();
        v
    }

    fn walk(root: &Path, dir: &Path) -> Vec<(String, String)> {
        let mut v = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                v.push((rel + "/", String::new()));
                v.extend(walk(root, &p));
            } else {
                v.push((rel, fs::read_to_string(&p).unwrap()));
            }
        }
        v
    }

    #[test]
    fn undone_unless_committed_and_copies_kept_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::write(root.join("a"), "old a").unwrap();
        fs::write(root.join("gone"), "old gone").unwrap();
        let before = files(root);
        {
            let mut t = Transaction::new(root);
            t.stage(Path::new("a"), b"new a").unwrap();
            t.stage(Path::new("d/e/b"), b"new b").unwrap();
            t.keep_original(Path::new("a"));
            t.remove(Path::new("gone"));
            t.apply().unwrap();
            assert_eq!(fs::read_to_string(root.join("d/e/b")).unwrap(), "new b");
        }
        assert_eq!(files(root), before, "dropped without a commit: undone");

        let mut t = Transaction::new(root);
        t.stage(Path::new("a"), b"new a").unwrap();
        assert_eq!(t.keep_original(Path::new("a")), PathBuf::from("a.orig"));
        t.remove(Path::new("gone"));
        t.apply().unwrap();
        t.commit();
        let want: Vec<(String, String)> = [("a", "new a"), ("a.orig", "old a")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(files(root), want);
        let mut t = Transaction::new(root);
        assert_eq!(t.keep_original(Path::new("a")), PathBuf::from("a.orig.2"));
    }
}
