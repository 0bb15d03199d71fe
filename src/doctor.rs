//! `nixflash doctor` as a library: whether this machine and project can build and flash, as a
//! list of checks, each with what was found and, when something is wrong, what to do. The command
//! line prints them.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::board::Board;
use crate::context::Context;
use crate::git::{self, Git};
use crate::nix::std_lock;
use crate::nix::Nix;
use crate::process::Cmd;
use crate::report::{Event, Reporter};
use crate::version::Version;

mod access;
mod files;
mod probes;
use access::port_checks;
use files::file_checks;
pub use probes::udev_rules;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but worth knowing.
    Warn,
    /// Will fail.
    Fail,
}

/// One thing checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub status: Status,
    /// What was found.
    pub what: String,
    /// What to do about it.
    pub fix: Option<String>,
}

impl Check {
    fn ok(what: impl Into<String>) -> Check {
        Check {
            status: Status::Ok,
            what: what.into(),
            fix: None,
        }
    }

    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    fn warn(what: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The user's and the project's board files: one that nixflash cannot use fails (its board is
/// left out, and a command that needs it fails), one with something to fix is worth knowing.
fn board_file_checks(db: &crate::board::Database) -> Vec<Check> {
    db.warnings()
        .iter()
        .map(|w| match &w.error {
            Some(_) => Check::fail(
                w.message.clone(),
                format!(
                    "fix {} (compare with `nixflash boards show uno --toml`) or remove it",
                    w.file
                ),
            ),
            None => Check::warn(w.message.clone(), format!("edit {} as said", w.file)),
        })
        .collect()
}

/// Runs every check for the context, giving each to `report` as soon as it is known (evaluating
/// the flake can take a while, its progress reported to `reporter`), and returns them all. Access
/// to debug probes is checked in a project whose family has probes, or when `probes` asks.
pub fn run(
    ctx: &Context,
    nix_args: &[String],
    probes: bool,
    reporter: &dyn Reporter,
    mut report: impl FnMut(&Check),
) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut add = |c: Check| {
        report(&c);
        checks.push(c);
    };

    // Nix and flakes.
    let nix = Nix::find(false).ok().map(|n| n.with_args(nix_args));
    nix_checks(nix.as_ref(), &mut add);

    for c in board_file_checks(&ctx.db) {
        add(c);
    }

    // The project: outside one, only the system is checked.
    let mut board: Option<&Board> = None;
    let mut flake_dir = None;
    // Whether the flake can be evaluated as it is, or only after what a build does first.
    let mut evaluable = true;
    let manifest = ctx.manifest();
    if let (Err(e), false) = (&manifest, ctx.outside_a_project()) {
        // A Cargo.toml that cannot be read is a broken project, not the lack of one.
        let r = crate::error::Report::of(e);
        add(Check::fail(
            r.error,
            r.hints
                .first()
                .cloned()
                .unwrap_or_else(|| "fix it: cargo cannot read it either".into()),
        ));
    }
    if let Ok(m) = manifest {
        match ctx.flake_dir() {
            Err(_) => add(Check::fail(
                format!("{} has no flake.nix", m.root.display()),
                format!(
                    "nixflash init --board {}",
                    m.board.as_deref().unwrap_or("<id>")
                ),
            )),
            Ok(dir) => {
                for c in git_checks(&dir, ctx.git()) {
                    // What `nixflash build` would git-add first, the flake cannot see yet.
                    evaluable &=
                        c.status != Status::Warn || !c.what.starts_with("git does not track");
                    add(c);
                }
                flake_dir = Some(dir);
            }
        }
        let (checks, readable) = file_checks(&m.root, flake_dir.as_deref(), m.board.as_deref());
        evaluable &= readable;
        for c in checks {
            add(c);
        }
        board = board_check(ctx, m, flake_dir.as_deref(), &mut evaluable, &mut add);
    }

    // The flake, evaluated as a build would evaluate it.
    if let (Some(nix), Some(dir), true) = (&nix, &flake_dir, evaluable) {
        reporter.report(Event::step(
            "Evaluating",
            "the flake's firmware derivation (the first time, nix downloads the pinned inputs)…",
        ));
        match nix.evaluate_firmware(dir, reporter) {
            Ok(drv) => add(Check::ok(format!(
                "the flake evaluates: the firmware is {drv}"
            ))),
            Err(e) => add(Check::fail(
                format!("the flake does not evaluate: {}", first_line(&e)),
                "run `nixflash build` to see nix's whole message",
            )),
        }
    }

    // The flasher: the one on PATH, else the one the flake pins (which `flash` builds).
    if let Some(b) = board {
        flasher_check(b, flake_dir.as_deref(), nix.is_some(), &mut add);
    }

    if cfg!(target_os = "linux") {
        port_checks(board, &mut add);
        if probes || board.is_some_and(|b| !b.family().probes.is_empty()) {
            for c in probes::probe_checks(&crate::serial::probes::known(&ctx.db)) {
                add(c);
            }
        }
    }
    checks
}

/// Nix's checks: installed, new enough, with flakes enabled.
fn nix_checks(nix: Option<&Nix>, add: &mut impl FnMut(Check)) {
    match nix {
    None => add(Check::fail(
        "nix is not installed (no `nix` on PATH)",
        "install Nix: sh <(curl -L https://nixos.org/nix/install) --daemon (https://nixos.org/download)",
    )),
    Some(nix) => {
        add(version_check(&nix.path, nix.version(), crate::nix::min_version()));
        match flakes_enabled(nix) {
            Some(true) => add(Check::ok("flakes are enabled")),
            Some(false) => add(Check::warn(
                "flakes are not enabled in nix.conf: nixflash enables them for its own calls, but plain `nix build`, `nix develop` and direnv need them",
                "add `experimental-features = nix-command flakes` to ~/.config/nix/nix.conf",
            )),
            None => add(Check::fail(
                "cannot read nix's configuration",
                "run `nix config show` to see what is wrong",
            )),
        }
    }
}
}

/// The board the project's Cargo.toml names: known, matching the project's files, and with the
/// standard library's lock if it builds its own core (else the flake is not `evaluable`).
fn board_check<'a>(
    ctx: &'a Context,
    m: &crate::manifest::Manifest,
    flake_dir: Option<&Path>,
    evaluable: &mut bool,
    add: &mut impl FnMut(Check),
) -> Option<&'a Board> {
    match m.board_id() {
        Err(_) => {
            add(Check::fail(
                "Cargo.toml names no board",
                "add [package.metadata.nixflash] board = \"<id>\" to Cargo.toml (ids: `nixflash boards`)",
            ));
            None
        }
        Ok(id) => match ctx.db.get(id) {
            Ok(b) => {
                match crate::project::board_mismatch(&m.root, b) {
                    None => add(Check::ok(format!("board {} ({})", b.id, b.name))),
                    Some(why) => add(Check::fail(
                        format!("Cargo.toml says board `{}`, but {why}", b.id),
                        format!(
                            "nixflash init --board {} (it writes the board's files again)",
                            b.id
                        ),
                    )),
                }
                if let (true, Some(dir)) = (b.rust.build_std, &flake_dir) {
                    if !dir.join(std_lock::STD_LOCK).is_file() {
                        *evaluable = false;
                        add(Check::warn(
                            format!(
                                "{} is missing (the standard library's lock of the pinned toolchain, which -Z build-std needs): the flake does not evaluate without it",
                                std_lock::STD_LOCK
                            ),
                            "nixflash build (or nixflash update) creates it from the toolchain's rust-src and git-adds it",
                        ));
                    }
                }
                Some(b)
            }
            Err(e) => {
                add(Check::fail(
                    format!("board `{id}` is unknown: {}", first_line(&e)),
                    "choose an id from `nixflash boards` for [package.metadata.nixflash] board in Cargo.toml",
                ));
                None
            }
        },
    }
}

/// The flasher: the one on PATH, else the one the flake pins (which `flash` builds).
fn flasher_check(b: &Board, flake_dir: Option<&Path>, has_nix: bool, add: &mut impl FnMut(Check)) {
    let method = &b.family().flasher;
    let spec = method.tool();
    let tool = spec.name.as_str();
    let flake_has_one = flake_dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("flake.nix")).ok())
        .is_some_and(|t| t.contains("flasher"));
    let e = match crate::flash::on_path(b) {
        Ok(f) => return add(Check::ok(f.to_string())),
        Err(e) => e,
    };
    add(match method.without_tool(b, &e) {
        // The boot drive needs no flasher: picotool is only the way without one.
        Some(other) => Check::ok(other),
        None if flake_has_one && has_nix => Check::warn(
            format!("{tool} on PATH cannot be used ({e:#}): `nixflash flash` builds the one the project's flake pins"),
            format!(
                "nothing to do; for `cargo run` and a faster first flash, enter the dev shell (`nix develop`, or `direnv allow` once), or install it with {}",
                spec.how_to_install()
            ),
        ),
        None => Check::fail(
            format!("{tool} (the {}'s flasher) cannot be used: {e:#}", b.name),
            format!("install it with {}", spec.how_to_install()),
        ),
    });
}

/// The check of a Nix version against the oldest that works.
fn version_check(path: &Path, version: anyhow::Result<Version>, min: Version) -> Check {
    match version {
        Ok(v) => match crate::nix::version_problem(path, v, min) {
            Some((problem, fix)) => Check::fail(problem, fix),
            None => Check::ok(format!("nix {v} ({})", path.display())),
        },
        Err(e) => Check::fail(
            format!("nix at {} does not run: {e:#}", path.display()),
            "reinstall Nix (https://nixos.org/download)",
        ),
    }
}

fn first_line(e: &anyhow::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Whether the user's nix.conf enables flakes (without nixflash's own flag).
fn flakes_enabled(nix: &Nix) -> Option<bool> {
    let new = nix.version().ok().is_some_and(|v| v >= Version(2, 20, 0));
    let sub: &[&str] = if new {
        &["config", "show", "experimental-features"]
    } else {
        &["show-config"]
    };
    let out = Cmd::new(&nix.path)
        .args(["--extra-experimental-features", "nix-command"])
        .args(sub)
        .output()
        .ok()?;
    if !out.success() {
        return None;
    }
    let text = out.stdout_text();
    let features = text
        .lines()
        .find_map(|l| l.strip_prefix("experimental-features ="))
        .unwrap_or(&text);
    Some(features.split_whitespace().any(|f| f == "flakes"))
}

fn git_checks(flake_dir: &Path, git: &Git) -> Vec<Check> {
    match git {
        Git::NotInstalled => vec![Check::warn(
            "git is not installed: Nix copies the whole project folder (target/ too) on every build",
            "install git, then `git init && git add -A` in the project: builds get faster",
        )],
        Git::NotARepo => vec![Check::warn(
            format!(
                "{} is not in a git repository: Nix copies the whole folder (target/ too) on every build",
                flake_dir.display()
            ),
            format!("cd {} && git init && git add -A", flake_dir.display()),
        )],
        Git::Repo { root } => {
            let u = match git::untracked(flake_dir) {
                Ok(u) => u,
                Err(e) => {
                    return vec![Check::fail(
                        format!("cannot ask git: {e:#}"),
                        "run `git status` to see what is wrong",
                    )]
                }
            };
            let list = |files: &[PathBuf]| -> String {
                files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let mut out = Vec::new();
            if !u.files.is_empty() {
                out.push(Check::warn(
                    format!(
                        "git does not track {} (the flake cannot see it; `nixflash build` adds it, plain `nix build` fails)",
                        list(&u.files)
                    ),
                    format!("git add --intent-to-add -- {}", list(&u.files)),
                ));
            }
            if !u.ignored.is_empty() {
                out.push(Check::fail(
                    format!(
                        "{} is ignored by .gitignore (the flake cannot see it)",
                        list(&u.ignored)
                    ),
                    format!(
                        "remove it from .gitignore, or git add --force --intent-to-add -- {}",
                        list(&u.ignored)
                    ),
                ));
            }
            if out.is_empty() {
                out.push(Check::ok(format!(
                    "git repository {}, every file the flake needs is tracked",
                    root.display()
                )));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_nix_fails_with_what_to_do() {
        let p = Path::new("/usr/bin/nix");
        let min = crate::nix::min_version();
        assert_eq!(min, Version(2, 18, 0), "the pinned nixpkgs' minimum");
        let debian = version_check(p, Ok(Version(2, 8, 0)), min);
        assert_eq!(debian.status, Status::Fail);
        assert!(
            debian
                .what
                .contains("nix 2.8.0 (/usr/bin/nix) is older than 2.18.0"),
            "{debian:?}"
        );
        assert!(debian.fix.unwrap().contains("Debian 12 has 2.8"));
        assert_eq!(
            version_check(p, Ok(Version(2, 26, 3)), min).status,
            Status::Ok
        );
        let broken = version_check(p, Err(anyhow::anyhow!("exec format error")), min);
        assert_eq!(broken.status, Status::Fail);
    }
}
