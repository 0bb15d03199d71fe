//! Reading a project's flake.lock: which revision each input is pinned to, and what an update
//! moved.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// One of the flake's own inputs as flake.lock locks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// The commit, for git and GitHub inputs.
    pub rev: Option<String>,
    /// Seconds since 1970 of that commit (or of the tree, for path inputs).
    pub last_modified: Option<u64>,
    /// What it is when it has no commit: `path:/src/nixpkgs`, or its narHash.
    pub other: String,
    /// The whole `locked` attribute set, keys sorted, for comparisons.
    pub json: String,
}

impl fmt::Display for Locked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rev {
            Some(rev) => f.write_str(&rev[..rev.len().min(7)])?,
            None => f.write_str(&self.other)?,
        }
        if let Some(t) = self.last_modified.filter(|t| *t > 0) {
            write!(f, " ({})", utc_date(t))?;
        }
        Ok(())
    }
}

/// The inputs the flake itself names (the root node's), each as locked; an input that follows
/// another is left out.
pub fn parse(text: &str) -> Result<BTreeMap<String, Locked>> {
    let v: Value = serde_json::from_str(text).context("flake.lock is not valid JSON")?;
    let nodes = v.get("nodes").context("flake.lock has no `nodes`")?;
    let root = v.get("root").and_then(Value::as_str).unwrap_or("root");
    let root = nodes
        .get(root)
        .with_context(|| format!("flake.lock has no root node `{root}`"))?;
    let mut out = BTreeMap::new();
    // A flake without inputs has a root node without them.
    let Some(inputs) = root.get("inputs").and_then(Value::as_object) else {
        return Ok(out);
    };
    for (name, target) in inputs {
        let Some(node) = target.as_str().and_then(|n| nodes.get(n)) else {
            continue;
        };
        let Some(locked) = node.get("locked") else {
            continue;
        };
        let text_of = |k: &str| locked.get(k).and_then(Value::as_str).map(str::to_string);
        let other = match (text_of("type").as_deref(), text_of("path")) {
            (Some(t), Some(p)) => format!("{t}:{p}"),
            _ => text_of("narHash").unwrap_or_else(|| "?".into()),
        };
        out.insert(
            name.clone(),
            Locked {
                rev: text_of("rev"),
                last_modified: locked.get("lastModified").and_then(Value::as_u64),
                other,
                json: serde_json::to_string(locked).unwrap_or_default(),
            },
        );
    }
    Ok(out)
}

/// The inputs of the flake.lock in `flake_dir`; none when there is no flake.lock.
pub fn read(flake_dir: &Path) -> Result<BTreeMap<String, Locked>> {
    let path = flake_dir.join("flake.lock");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).with_context(|| format!("cannot read {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Checks that each of `asked` (input names, or paths such as `rust-overlay/nixpkgs`) is an input
/// of the flake whose lock's inputs are `inputs`: an unknown name is an error that lists the
/// flake's inputs and suggests the closest (`nix flake update` would ignore it and change
/// nothing).
pub fn check_inputs(asked: &[String], inputs: &BTreeMap<String, Locked>) -> Result<()> {
    for name in asked {
        let top = name.split('/').next().unwrap_or(name);
        if inputs.contains_key(top) {
            continue;
        }
        let names: Vec<&str> = inputs.keys().map(String::as_str).collect();
        let mut f = crate::error::Failure::new(
            crate::error::Kind::InputUnknown,
            format!(
                "the flake has no input `{name}` (its inputs: {})",
                names.join(", ")
            ),
        );
        let closest = names
            .iter()
            .map(|n| (strsim::jaro_winkler(top, n), *n))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, n)) = closest {
            f = f.hint(format!("did you mean `{n}`? nixflash update {n}"));
        }
        return Err(f
            .hint("nixflash update, without names, updates every input")
            .into());
    }
    Ok(())
}

/// How a project's flake.lock stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockFile {
    /// There, and readable.
    Valid,
    /// Not there: Nix would lock every input to its newest revision.
    Missing,
    /// There, but not a lock Nix can read (why).
    Invalid(String),
}

/// The state of the flake.lock in `flake_dir`.
pub fn inspect(flake_dir: &Path) -> LockFile {
    match std::fs::read_to_string(flake_dir.join("flake.lock")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => LockFile::Missing,
        Err(e) => LockFile::Invalid(e.to_string()),
        Ok(text) => match parse(&text) {
            Ok(_) => LockFile::Valid,
            Err(e) => LockFile::Invalid(format!("{e:#}")),
        },
    }
}

/// Whether flake.nix in `flake_dir` names the inputs nixflash pins (templates/pins.toml), as
/// `nixflash new` and `init` write it: then the pinned flake.lock is the one that belongs to it.
pub fn has_pinned_inputs(flake_dir: &Path) -> bool {
    let (Ok(flake), Ok(pins)) = (
        std::fs::read_to_string(flake_dir.join("flake.nix")),
        crate::pins::pins(),
    ) else {
        return false;
    };
    pins.values()
        .all(|p| flake.contains(&format!("\"{}\"", p.url)))
}

/// What to do about a flake.lock that is not there or cannot be read (for build and doctor).
pub fn fix(flake_dir: &Path, state: &LockFile) -> Vec<String> {
    let git = format!("git -C {} checkout -- flake.lock", flake_dir.display());
    let pins = "nixflash build writes it again from nixflash's tested pins";
    let newest = "nix flake lock locks the flake's inputs again, to their newest revisions";
    match (state, has_pinned_inputs(flake_dir)) {
        (LockFile::Valid, _) => Vec::new(),
        (LockFile::Missing, true) => vec![format!("{pins} (or restore it: {git})")],
        (LockFile::Missing, false) => vec![format!("{newest}; or, if git had one: {git}")],
        (LockFile::Invalid(_), true) => vec![format!(
            "if git has a good copy: {git}; or delete it: {pins}"
        )],
        (LockFile::Invalid(_), false) => vec![format!(
            "if git has a good copy: {git}; or delete it: {newest}"
        )],
    }
}

/// Before a build: a flake.lock Nix cannot read is an error that says what to do (Nix itself
/// only shows a JSON parser's exception); a missing one is written again from nixflash's tested
/// pins when flake.nix has nixflash's inputs, instead of Nix locking them to whatever is newest
/// today. Returns whether it wrote one.
pub fn prepare(flake_dir: &Path) -> Result<bool> {
    let state = inspect(flake_dir);
    let path = flake_dir.join("flake.lock");
    match &state {
        LockFile::Valid => Ok(false),
        LockFile::Invalid(why) => {
            let mut f = crate::error::Failure::new(
                crate::error::Kind::FlakeLock,
                format!("{} is not a lock file Nix can read: {why}", path.display()),
            );
            for h in fix(flake_dir, &state) {
                f = f.hint(h);
            }
            Err(f.into())
        }
        LockFile::Missing if has_pinned_inputs(flake_dir) => {
            let lock = crate::pins::flake_lock(&crate::pins::pins()?);
            std::fs::write(&path, lock)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(true)
        }
        LockFile::Missing => Ok(false),
    }
}

/// What happened to one input between two locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(String, Locked),
    Moved(String, Locked, Locked),
    Unchanged(String, Locked),
    Removed(String, Locked),
}

/// Every input of `before` and `after`, by name.
pub fn changes(before: &BTreeMap<String, Locked>, after: &BTreeMap<String, Locked>) -> Vec<Change> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| match (before.get(n), after.get(n)) {
            (Some(b), Some(a)) if a.json == b.json => Change::Unchanged(n.clone(), a.clone()),
            (Some(b), Some(a)) => Change::Moved(n.clone(), b.clone(), a.clone()),
            (None, Some(a)) => Change::Added(n.clone(), a.clone()),
            (Some(b), None) => Change::Removed(n.clone(), b.clone()),
            (None, None) => unreachable!("the name comes from one of the maps"),
        })
        .collect()
}

/// `YYYY-MM-DD` (UTC) of a time in seconds since 1970.
pub fn utc_date(secs: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1785747939), "2026-08-03");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
    }

    #[test]
    fn unknown_inputs_are_refused_with_the_closest() {
        let lock = parse(&crate::pins::flake_lock(&crate::pins::pins().unwrap())).unwrap();
        assert!(check_inputs(&["nixpkgs".into(), "rust-overlay/nixpkgs".into()], &lock).is_ok());
        let e = check_inputs(&["crane".into(), "nixpkgz".into()], &lock).unwrap_err();
        let r = crate::error::Report::of(&e);
        assert_eq!(r.kind, crate::error::Kind::InputUnknown);
        assert_eq!(
            r.error,
            "the flake has no input `nixpkgz` (its inputs: crane, nixpkgs, rust-overlay)"
        );
        assert_eq!(
            r.hints[0],
            "did you mean `nixpkgs`? nixflash update nixpkgs"
        );
        let e = check_inputs(&["zzz".into()], &lock).unwrap_err();
        assert!(!crate::error::Report::of(&e).hints[0].starts_with("did you mean"));
        // A flake without inputs has a lock without them.
        let none = r#"{"nodes":{"root":{}},"root":"root","version":7}"#;
        assert!(parse(none).unwrap().is_empty());
        assert!(parse("{").is_err());
    }

    #[test]
    fn the_generated_lock_reads_back_and_changes_are_named() {
        let lock = crate::pins::flake_lock(&crate::pins::pins().unwrap());
        let before = parse(&lock).unwrap();
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            ["crane", "nixpkgs", "rust-overlay"]
        );
        assert_eq!(before["nixpkgs"].to_string(), "104240a (2026-08-03)");
        let moved = lock.replace(
            "104240a772428cc2e20d8fd86c9ddbb886bbaff2",
            "5d3a2b1772428cc2e20d8fd86c9ddbb886bbaff2",
        );
        let after = parse(&moved).unwrap();
        let c = changes(&before, &after);
        assert_eq!(c.len(), 3);
        assert!(matches!(&c[0], Change::Unchanged(n, _) if n == "crane"));
        match &c[1] {
            Change::Moved(n, b, a) => {
                assert_eq!(n, "nixpkgs");
                assert_eq!(b.rev.as_deref().map(|r| &r[..7]), Some("104240a"));
                assert_eq!(a.to_string(), "5d3a2b1 (2026-08-03)");
            }
            other => panic!("{other:?}"),
        }
    }
}
