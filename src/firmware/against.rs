//! What `nixflash verify --against` checks a build against: a published SHA-256, a `sha256sum`
//! file (lines `<hash>  <name>`), or another build's firmware ELF.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::compare::{self, Comparison};
use crate::error::{Failure, Kind};

/// One hash of what was built: what it is of (`elf`), the file name a `sha256sum` file names it
/// by (`blinky.elf`), and the SHA-256 in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub of: &'static str,
    pub file_name: String,
    pub sha256: String,
}

impl Digest {
    /// The digest of the file at `path`, named by its file name.
    pub fn of_file(of: &'static str, path: &Path) -> Result<Digest> {
        Ok(Digest {
            of,
            file_name: file_name(path),
            sha256: super::hash::sha256_file(path)?,
        })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A line of a `sha256sum` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumLine {
    pub sha256: String,
    pub name: String,
}

/// What to check against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Against {
    /// A SHA-256 (lowercased).
    Hash(String),
    /// A `sha256sum` file and its lines.
    Sums { file: PathBuf, lines: Vec<SumLine> },
    /// Another firmware ELF.
    Elf(PathBuf),
}

/// `text` as a SHA-256: 64 hex digits, lowercased.
fn as_sha256(text: &str) -> Option<String> {
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

fn usage(message: String) -> Failure {
    Failure::new(Kind::Usage, message).hint(
        "pass --against a SHA-256 (64 hex digits, as `sha256sum` prints it), a file of \
         `sha256sum` lines (`<hash>  <name>.elf`), or a firmware ELF to compare with",
    )
}

/// Reads the `--against` argument; a relative path is taken from `cwd`.
pub fn parse(arg: &str, cwd: &Path) -> Result<Against> {
    let arg = arg.trim();
    if let Some(hash) = as_sha256(arg) {
        return Ok(Against::Hash(hash));
    }
    let path = cwd.join(arg);
    if !path.is_file() {
        let hex = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_hexdigit());
        let message = if hex {
            format!(
                "`{arg}` has {} hex digits, and a SHA-256 has 64{}",
                arg.len(),
                if arg.len() == 40 {
                    " (is it a SHA-1?)"
                } else {
                    ""
                }
            )
        } else {
            format!("`{arg}` is neither a SHA-256 (64 hex digits) nor a file")
        };
        return Err(usage(message).into());
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(b"\x7fELF") {
        return Ok(Against::Elf(path));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        usage(format!(
            "{} is neither an ELF file nor text (`sha256sum` lines)",
            path.display()
        ))
    })?;
    let lines = sum_lines(&text).map_err(|(n, line)| {
        usage(format!(
            "line {n} of {} is not a `sha256sum` line (`<64 hex digits>  <name>`): {line}",
            path.display()
        ))
    })?;
    if lines.is_empty() {
        return Err(usage(format!("{} holds no `sha256sum` line", path.display())).into());
    }
    Ok(Against::Sums { file: path, lines })
}

/// The lines of a `sha256sum` file (blank lines and `#` comments left out), or the first that
/// is not one (its number and text).
fn sum_lines(text: &str) -> std::result::Result<Vec<SumLine>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if t.trim().is_empty() || t.starts_with('#') {
            continue;
        }
        let bad = || (i + 1, t.to_string());
        // A line that starts with a backslash has its name escaped (see `hash::sum_line`).
        let (escaped, t) = match t.strip_prefix('\\') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (hash, rest) = t.split_once(' ').ok_or_else(bad)?;
        let sha256 = as_sha256(hash).ok_or_else(bad)?;
        // `<hash>  <name>` (text mode) or `<hash> *<name>` (binary mode).
        let name = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('*'))
            .ok_or_else(bad)?;
        let name = match escaped {
            true => unescape(name).ok_or_else(bad)?,
            false => name.to_string(),
        };
        // A path (`result/bin/blinky.elf`) names the file by its last part.
        let name = name.rsplit('/').next().unwrap_or(&name).to_string();
        out.push(SumLine { sha256, name });
    }
    Ok(out)
}

/// A name as `sha256sum` escapes it (`\\`, `\n`, `\r`), unescaped; `None` for any other escape.
fn unescape(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            'n' => '\n',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

/// One hash checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HashCheck {
    /// What was built that it is compared with (`elf`).
    pub of: &'static str,
    /// The name on the `sha256sum` line, if it came from one.
    pub name: Option<String>,
    pub expected: String,
    pub got: String,
    pub matches: bool,
}

/// The outcome of a check against a hash, a `sha256sum` file or an ELF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// `hash`, `sha256sum` or `elf`.
    pub kind: &'static str,
    /// The hash, or the file, given.
    pub given: String,
    /// Whether the build is what was expected.
    pub identical: bool,
    /// The hashes compared (none for an ELF).
    pub hashes: Vec<HashCheck>,
    /// The ELFs compared, section by section (an ELF only).
    pub comparison: Option<Comparison>,
}

/// Each digest compared with `expected` (from the line named `name`), the matching one alone
/// when one matches.
fn against_hash(expected: &str, name: Option<&str>, digests: &[Digest]) -> Vec<HashCheck> {
    let check = |d: &Digest| HashCheck {
        of: d.of,
        name: name.map(str::to_string),
        expected: expected.to_string(),
        got: d.sha256.clone(),
        matches: d.sha256 == expected,
    };
    match digests.iter().find(|d| d.sha256 == expected) {
        Some(d) => vec![check(d)],
        None => digests.iter().map(check).collect(),
    }
}

/// Checks what was built (its `digests`, and its ELF `elf`) against `against`.
pub fn check(against: &Against, digests: &[Digest], elf: &Path) -> Result<Checked> {
    match against {
        Against::Hash(h) => {
            let hashes = against_hash(h, None, digests);
            Ok(Checked {
                kind: "hash",
                given: h.clone(),
                identical: hashes.iter().any(|c| c.matches),
                hashes,
                comparison: None,
            })
        }
        Against::Sums { file, lines } => {
            let hashes = sums_checks(file, lines, digests)?;
            Ok(Checked {
                kind: "sha256sum",
                given: file.display().to_string(),
                identical: hashes.iter().all(|c| c.matches),
                hashes,
                comparison: None,
            })
        }
        Against::Elf(other) => {
            let read =
                |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
            let comparison = compare::compare(&read(elf)?, &read(other)?)
                .with_context(|| format!("cannot compare {} with the build", other.display()))?;
            Ok(Checked {
                kind: "elf",
                given: other.display().to_string(),
                identical: comparison.identical,
                hashes: Vec::new(),
                comparison: Some(comparison),
            })
        }
    }
}

/// The lines of a `sha256sum` file checked: those that name a file that was built (by its file
/// name), else the only line.
fn sums_checks(file: &Path, lines: &[SumLine], digests: &[Digest]) -> Result<Vec<HashCheck>> {
    let named: Vec<HashCheck> = digests
        .iter()
        .filter_map(|d| {
            let line = lines.iter().find(|l| l.name == d.file_name)?;
            Some(HashCheck {
                of: d.of,
                name: Some(line.name.clone()),
                expected: line.sha256.clone(),
                got: d.sha256.clone(),
                matches: line.sha256 == d.sha256,
            })
        })
        .collect();
    if !named.is_empty() {
        return Ok(named);
    }
    if let [line] = lines {
        return Ok(against_hash(&line.sha256, Some(&line.name), digests));
    }
    let names: Vec<String> = digests.iter().map(|d| d.file_name.clone()).collect();
    let listed: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    Err(Failure::new(
        Kind::Usage,
        format!(
            "no line of {} names {} (its lines name {})",
            file.display(),
            names.join(" or "),
            listed.join(", ")
        ),
    )
    .hint(format!(
        "give the file a line `<sha256>  {}`, or pass the hash itself to --against",
        names.first().map_or("<name>.elf", String::as_str)
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Report;

    const A: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const B: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn digest(sha256: &str) -> Vec<Digest> {
        vec![Digest {
            of: "elf",
            file_name: "blinky.elf".into(),
            sha256: sha256.into(),
        }]
    }

    fn refused(arg: &str, cwd: &Path) -> Report {
        let r = Report::of(&parse(arg, cwd).unwrap_err());
        assert_eq!(r.kind, Kind::Usage, "{r:?}");
        r
    }

    #[test]
    fn hashes_files_and_elfs_are_told_apart() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        assert_eq!(
            parse(&A.to_uppercase(), dir).unwrap(),
            Against::Hash(A.into())
        );
        std::fs::write(
            dir.join("SHA256SUMS"),
            format!("# release 1\n{A}  result/bin/blinky.elf\n\n{B} *blinky.bin\n"),
        )
        .unwrap();
        let Against::Sums { lines, .. } = parse("SHA256SUMS", dir).unwrap() else {
            panic!("not a sums file");
        };
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].name, "blinky.elf");
        assert_eq!(lines[1].name, "blinky.bin");
        std::fs::write(dir.join("fw.elf"), b"\x7fELF\x01\x01").unwrap();
        assert_eq!(
            parse("fw.elf", dir).unwrap(),
            Against::Elf(dir.join("fw.elf"))
        );

        let r = refused(&A[..40], dir);
        assert!(r.error.contains("has 40 hex digits"), "{r:?}");
        assert!(r.error.contains("SHA-1"), "{r:?}");
        assert!(r.hints[0].contains("64 hex digits"), "{r:?}");
        let r = refused("nope", dir);
        assert!(r.error.contains("neither a SHA-256"), "{r:?}");
        std::fs::write(dir.join("bad"), format!("{A}  a\nsomething else\n")).unwrap();
        let r = refused("bad", dir);
        assert!(r.error.contains("line 2 of"), "{r:?}");
        std::fs::write(dir.join("empty"), "# nothing\n").unwrap();
        assert!(refused("empty", dir).error.contains("holds no"));
    }

    #[test]
    fn names_with_backslashes_and_line_ends_are_escaped_as_sha256sum_escapes_them() {
        // What the real `sha256sum` prints for such names, line for line what `sum_line` writes,
        // and read back to the names.
        let d = tempfile::tempdir().unwrap();
        let names = ["plain.elf", "a\\b.elf", "c\nd.elf", "e\rf.elf"];
        for n in names {
            std::fs::write(d.path().join(n), n).unwrap();
        }
        let out = std::process::Command::new("sha256sum")
            .args(names)
            .current_dir(d.path())
            .output()
            .expect("sha256sum (coreutils) runs");
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let ours: Vec<String> = names
            .iter()
            .map(|n| {
                crate::firmware::hash::sum_line(&crate::firmware::hash::sha256_hex(n.as_bytes()), n)
            })
            .collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), ours);
        let read: Vec<String> = sum_lines(&text)
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(read, names);
        // An escape `sha256sum` never writes is not a sums line.
        assert_eq!(
            sum_lines(&format!("\\{A}  a\\tb\n")),
            Err((1, format!("\\{A}  a\\tb")))
        );
    }

    #[test]
    fn a_hash_and_sums_lines_are_checked_against_what_was_built() {
        let elf = Path::new("/nowhere.elf");
        let c = check(&Against::Hash(A.into()), &digest(A), elf).unwrap();
        assert!(c.identical);
        assert_eq!(c.hashes[0].of, "elf");
        let c = check(&Against::Hash(B.into()), &digest(A), elf).unwrap();
        assert!(!c.identical);
        assert_eq!(
            (c.hashes[0].expected.as_str(), c.hashes[0].got.as_str()),
            (B, A)
        );

        let line = |sha256: &str, name: &str| SumLine {
            sha256: sha256.into(),
            name: name.into(),
        };
        let sums = |lines| Against::Sums {
            file: "SUMS".into(),
            lines,
        };
        // The line that names the ELF, whatever the others say.
        let c = check(
            &sums(vec![line(B, "other.elf"), line(A, "blinky.elf")]),
            &digest(A),
            elf,
        )
        .unwrap();
        assert!(c.identical);
        assert_eq!(c.hashes.len(), 1);
        assert_eq!(c.hashes[0].name.as_deref(), Some("blinky.elf"));
        let c = check(&sums(vec![line(B, "blinky.elf")]), &digest(A), elf).unwrap();
        assert!(!c.identical);
        // The only line, whatever it names.
        let c = check(&sums(vec![line(A, "firmware.elf")]), &digest(A), elf).unwrap();
        assert!(c.identical);
        // Several lines, none naming the ELF: which one is meant cannot be told.
        let e = check(
            &sums(vec![line(A, "a.elf"), line(A, "b.elf")]),
            &digest(A),
            elf,
        )
        .unwrap_err();
        let r = Report::of(&e);
        assert_eq!(r.kind, Kind::Usage);
        assert!(
            r.error
                .contains("names blinky.elf (its lines name a.elf, b.elf)"),
            "{r:?}"
        );
    }
}
