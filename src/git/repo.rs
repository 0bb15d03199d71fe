//! A new repository written without git: what `git init --template=` then `git add -- <files>`
//! make (HEAD, config, the object and ref folders, a loose blob per file, an index of version 2),
//! for `nixflash new`, where the two git processes took longer than all the rest of it.
//!
//! Only where the result is what git would make: on Linux (git's filesystem probes there give
//! the four-line config below), with no git variable set that moves or changes the repository,
//! and user and system configs that set nothing bearing on `init` or `add` but
//! `init.defaultBranch` (see [`plain_init`]). Anywhere else `new` runs git as before.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha1::{Digest, Sha1};

/// The config `git init` writes on Linux.
const CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\
                      \tlogallrefupdates = true\n";

/// Environment variables that change where or how git writes a repository, or add config.
const GIT_VARIABLES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_INDEX_VERSION",
    "GIT_OBJECT_DIRECTORY",
    "GIT_TEMPLATE_DIR",
    "GIT_DEFAULT_HASH",
    "GIT_DEFAULT_REF_FORMAT",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_ATTR_SOURCE",
];

/// Config sections that bear neither on `git init` nor on `git add` of files without
/// attributes.
const HARMLESS_SECTIONS: &[&str] = &[
    "advice",
    "alias",
    "am",
    "apply",
    "author",
    "blame",
    "branch",
    "checkout",
    "clone",
    "color",
    "column",
    "commit",
    "committer",
    "credential",
    "diff",
    "difftool",
    "fetch",
    "format",
    "gc",
    "github",
    "gitlab",
    "gpg",
    "grep",
    "gui",
    "help",
    "http",
    "https",
    "interactive",
    "lfs",
    "log",
    "maintenance",
    "merge",
    "mergetool",
    "pager",
    "protocol",
    "pull",
    "push",
    "rebase",
    "receive",
    "remote",
    "rerere",
    "safe",
    "sendemail",
    "sequence",
    "status",
    "submodule",
    "tag",
    "transfer",
    "url",
    "user",
    "web",
    "worktree",
];

/// Keys of `[core]` that bear neither on `init` nor on adding text files with LF line ends.
const HARMLESS_CORE: &[&str] = &[
    "editor",
    "pager",
    "excludesfile",
    "autocrlf",
    "safecrlf",
    "whitespace",
    "quotepath",
    "askpass",
    "sshcommand",
    "hookspath",
    "commentchar",
    "abbrev",
];

/// The branch `git init` would start on, when a repository written here is what git would write;
/// None when git must do it.
pub fn plain_init() -> Option<String> {
    if !cfg!(target_os = "linux") || GIT_VARIABLES.iter().any(|v| std::env::var_os(v).is_some()) {
        return None;
    }
    let mut files = Vec::new();
    if std::env::var_os("GIT_CONFIG_NOSYSTEM").is_none() {
        files.push(PathBuf::from("/etc/gitconfig"));
    }
    files.extend(super::user_config_files());
    // Later files win, as in git.
    let mut branch = "master".to_string();
    for f in files {
        match fs::read_to_string(&f) {
            Ok(text) => {
                if let Some(b) = default_branch(&text)? {
                    branch = b;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
    }
    valid_branch(&branch).then_some(branch)
}

/// `init.defaultBranch` in a config file's `text`: Some(None) when unset, None when the file sets
/// anything else that bears on `init` or `add` (or is more than this reader follows).
fn default_branch(text: &str) -> Option<Option<String>> {
    let mut section = String::new();
    let mut branch = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.ends_with('\\') {
            return None;
        }
        let rest = if let Some(header) = line.strip_prefix('[') {
            let (name, rest) = header.split_once(']')?;
            section = name
                .split(|c: char| c.is_whitespace() || c == '"' || c == '.')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            rest.trim()
        } else {
            line
        };
        if rest.is_empty() || rest.starts_with('#') || rest.starts_with(';') {
            continue;
        }
        let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
        let key = key.trim().to_ascii_lowercase();
        match section.as_str() {
            "init" if key == "defaultbranch" => {
                branch = Some(value.trim().trim_matches('"').to_string());
            }
            "core" if HARMLESS_CORE.contains(&key.as_str()) => {}
            s if HARMLESS_SECTIONS.contains(&s) => {}
            _ => return None,
        }
    }
    Some(branch)
}

/// A branch name git takes as it is (no quoting, escapes or odd characters to get wrong).
fn valid_branch(b: &str) -> bool {
    !b.is_empty()
        && !b.starts_with(['-', '.', '/'])
        && !b.ends_with(['/', '.'])
        && !b.contains("..")
        && !b.contains("//")
        && !b.ends_with(".lock")
        && b.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./+".contains(c))
}

/// Makes `dir` a repository on `branch` with `files` (relative to `dir`, already written) added,
/// as `git init --template= && git add -- <files>` would.
pub fn create(dir: &Path, branch: &str, files: &[PathBuf]) -> Result<()> {
    let git = dir.join(".git");
    for d in ["objects/info", "objects/pack", "refs/heads", "refs/tags"] {
        fs::create_dir_all(git.join(d))
            .with_context(|| format!("cannot create {}", git.join(d).display()))?;
    }
    write(
        &git.join("HEAD"),
        format!("ref: refs/heads/{branch}\n").as_bytes(),
    )?;
    write(&git.join("config"), CONFIG.as_bytes())?;
    let mut entries = Vec::new();
    for rel in files {
        let path = dir.join(rel);
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let id = write_blob(&git, &bytes)?;
        let meta = fs::symlink_metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let name = rel
            .to_str()
            .with_context(|| format!("{} is not UTF-8", rel.display()))?;
        entries.push((name.to_string(), id, meta));
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    entries.dedup_by(|a, b| a.0 == b.0);
    let mut index = Vec::new();
    index.extend_from_slice(b"DIRC");
    index.extend_from_slice(&2u32.to_be_bytes());
    index.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (name, id, meta) in &entries {
        index_entry(&mut index, name, id, meta);
    }
    let sum = Sha1::digest(&index);
    index.extend_from_slice(&sum);
    write(&git.join("index"), &index)
}

/// One index entry: the file's stat data, as git keeps it (each field cut to 32 bits), its blob
/// and its name, NUL-padded to a multiple of 8 bytes.
fn index_entry(out: &mut Vec<u8>, name: &str, id: &[u8; 20], meta: &fs::Metadata) {
    let start = out.len();
    let mode = if meta.mode() & 0o111 != 0 {
        0o100755
    } else {
        0o100644
    };
    for field in [
        meta.ctime() as u32,
        meta.ctime_nsec() as u32,
        meta.mtime() as u32,
        meta.mtime_nsec() as u32,
        meta.dev() as u32,
        meta.ino() as u32,
        mode,
        meta.uid(),
        meta.gid(),
        meta.size() as u32,
    ] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out.extend_from_slice(id);
    out.extend_from_slice(&(name.len().min(0xfff) as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    let len = (out.len() - start + 8) & !7;
    out.resize(start + len, 0);
}

/// Writes `bytes` as a loose blob (zlib, read-only, as git does); its id.
fn write_blob(git: &Path, bytes: &[u8]) -> Result<[u8; 20]> {
    let mut object = format!("blob {}\0", bytes.len()).into_bytes();
    object.extend_from_slice(bytes);
    let id: [u8; 20] = Sha1::digest(&object).into();
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let dir = git.join("objects").join(&hex[..2]);
    let path = dir.join(&hex[2..]);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Level 1, git's core.looseCompression default.
    let packed = miniz_oxide::deflate::compress_to_vec_zlib(&object, 1);
    let created = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&path);
    match created {
        // The same bytes twice are one object.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(id),
        file => file
            .and_then(|mut f| f.write_all(&packed))
            .map(|()| id)
            .with_context(|| format!("cannot write {}", path.display())),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::File::create(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = command(dir, args).output().unwrap();
        assert!(out.success(), "git {args:?}: {}", out.stderr);
        out.stdout_text()
    }

    /// Every path under `dir`, relative to it, folders marked with a `/`.
    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                if p.is_dir() {
                    out.push(format!("{rel}/"));
                    todo.push(p);
                } else {
                    out.push(rel);
                }
            }
        }
        out.sort();
        out
    }

    /// The repository written here and the one `git init --template=` and `git add` make of the
    /// same files agree: HEAD, config, the files under .git, what is staged, and stat data git
    /// takes as clean; `git fsck` finds nothing wrong.
    #[test]
    fn the_repository_is_the_one_git_makes() {
        let d = tempfile::tempdir().unwrap();
        let files = [
            ("Cargo.toml", "[package]\nname = \"fw\"\n"),
            ("src/main.rs", "fn main() {}\n"),
            (".cargo/config.toml", "[build]\n"),
            (".gitignore", "/target\n"),
            ("src/bin/empty.rs", ""),
            ("src/main2.rs", "fn main() {}\n"),
        ];
        let (ours, theirs) = (d.path().join("ours"), d.path().join("theirs"));
        for root in [&ours, &theirs] {
            for (f, text) in files {
                let p = root.join(f);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(p, text).unwrap();
            }
        }
        let paths: Vec<PathBuf> = files.iter().map(|(f, _)| PathBuf::from(f)).collect();
        let branch = plain_init().unwrap_or_else(|| "master".into());
        create(&ours, &branch, &paths).unwrap();
        let default = format!("init.defaultBranch={branch}");
        git(&theirs, &["-c", &default, "init", "-q", "--template="]);
        let mut add = vec!["add", "--"];
        add.extend(files.iter().map(|(f, _)| *f));
        git(&theirs, &add);

        assert_eq!(tree(&ours.join(".git")), tree(&theirs.join(".git")));
        for f in ["HEAD", "config"] {
            let read = |root: &Path| fs::read_to_string(root.join(".git").join(f)).unwrap();
            assert_eq!(read(&ours), read(&theirs), "{f}");
        }
        for args in [&["ls-files", "-s"][..], &["status", "--porcelain"]] {
            assert_eq!(git(&ours, args), git(&theirs, args), "{args:?}");
        }
        assert_eq!(git(&ours, &["diff-files", "--name-only"]), "");
        git(&ours, &["fsck", "--strict", "--no-dangling"]);
    }

    #[test]
    fn the_default_branch_is_read_and_anything_else_bearing_on_init_or_add_declines() {
        assert_eq!(default_branch(""), Some(None));
        let plain = "[user]\n\tname = A\n[init]\n\tdefaultBranch = main\n[credential \"x\"]\n\
                     \thelper = store\n[core]\n\teditor = vim\n";
        assert_eq!(default_branch(plain), Some(Some("main".into())));
        for declined in [
            "[init]\n\ttemplateDir = ~/t\n",
            "[core]\n\tfsmonitor = true\n",
            "[include]\n\tpath = other\n",
            "[index]\n\tversion = 4\n",
            "[feature]\n\tmanyFiles = true\n",
            "[alias]\n\tx = !sh \\\n -c y\n",
        ] {
            assert_eq!(default_branch(declined), None, "{declined}");
        }
        assert!(valid_branch("main") && valid_branch("dev/x"));
        assert!(!valid_branch("-x") && !valid_branch("a..b") && !valid_branch("\"q\""));
    }
}
