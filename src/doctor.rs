//! `nixflash doctor` as a library: whether this machine and project can build and flash, as a
//! list of checks, each with what was found and, when something is wrong, what to do. The command
//! line prints them.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::board::Board;
use crate::context::Context;
use crate::git::{self, Git};
use crate::nix::Nix;
use crate::process::Cmd;
use crate::serial::access;
use crate::version::Version;

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
}

/// Runs every check for the context, giving each to `report` as soon as it is known (evaluating
/// the flake can take a while), and returns them all.
pub fn run(ctx: &Context, nix_args: &[String], mut report: impl FnMut(&Check)) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut add = |c: Check| {
        report(&c);
        checks.push(c);
    };

    // Nix and flakes.
    let nix = Nix::find(false).ok().map(|n| n.with_args(nix_args));
    match &nix {
        None => add(Check::fail(
            "nix is not installed (no `nix` on PATH)",
            "install Nix: sh <(curl -L https://nixos.org/nix/install) --daemon (https://nixos.org/download)",
        )),
        Some(nix) => {
            match nix.version() {
                Ok(v) if v < Version(2, 4, 0) => add(Check::fail(
                    format!("nix {v} ({}) is older than 2.4", nix.path.display()),
                    "install a current Nix (https://nixos.org/download): nixflash needs flakes and `nix build --json`",
                )),
                Ok(v) => add(Check::ok(format!("nix {v} ({})", nix.path.display()))),
                Err(e) => add(Check::fail(
                    format!("nix at {} does not run: {e:#}", nix.path.display()),
                    "reinstall Nix (https://nixos.org/download)",
                )),
            }
            match flakes_enabled(nix) {
                Some(true) => add(Check::ok("flakes are enabled")),
                Some(false) => add(Check::fail(
                    "flakes are not enabled (nixflash enables them for its own calls, but `nix build`, `nix develop` and direnv need them)",
                    "add `experimental-features = nix-command flakes` to ~/.config/nix/nix.conf",
                )),
                None => add(Check::fail(
                    "cannot read nix's configuration",
                    "run `nix config show` to see what is wrong",
                )),
            }
        }
    }

    // The project.
    let mut board: Option<&Board> = None;
    let mut flake_dir = None;
    match ctx.manifest() {
        Err(e) => add(Check::fail(
            format!("no project here: {}", first_line(&e)),
            "run it inside a project, or create one: nixflash new blinky --board uno",
        )),
        Ok(m) => {
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
                        add(c);
                    }
                    flake_dir = Some(dir);
                }
            }
            match m.board_id() {
                Err(_) => add(Check::fail(
                    "Cargo.toml names no board",
                    "add [package.metadata.nixflash] board = \"<id>\" to Cargo.toml (ids: `nixflash boards`)",
                )),
                Ok(id) => match ctx.db.get(id) {
                    Ok(b) => {
                        add(Check::ok(format!("board {} ({})", b.id, b.name)));
                        board = Some(b);
                    }
                    Err(e) => add(Check::fail(
                        format!("board `{id}` is unknown: {}", first_line(&e)),
                        "choose an id from `nixflash boards` for [package.metadata.nixflash] board in Cargo.toml",
                    )),
                },
            }
        }
    }

    // The flake, evaluated as a build would evaluate it.
    if let (Some(nix), Some(dir)) = (&nix, &flake_dir) {
        crate::progress::status(
            "Evaluating",
            "the flake's firmware derivation (the first time, nix downloads the pinned inputs)…",
        );
        match nix.evaluate_firmware(dir) {
            Ok(drv) => add(Check::ok(format!(
                "the flake evaluates: the firmware is {drv}"
            ))),
            Err(e) => add(Check::fail(
                format!("the flake does not evaluate: {}", first_line(&e)),
                "run `nixflash build` to see nix's whole message",
            )),
        }
    }

    // The flasher.
    if let Some(b) = board {
        let spec = &b.family().flasher;
        let tool = spec.tool.as_str();
        match which::which(tool) {
            Ok(p) => add(Check::ok(format!("{tool} ({})", p.display()))),
            Err(_) => add(Check::fail(
                format!("{tool} (the {}'s flasher) is not on PATH", b.name),
                format!(
                    "enter the project's dev shell (`nix develop`, or `direnv allow` once), which has it; or install it with {}",
                    spec.how_to_install()
                ),
            )),
        }
    }

    // Serial ports.
    if cfg!(target_os = "linux") {
        for c in serial_checks() {
            add(c);
        }
    }
    checks
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
        Git::NotInstalled => vec![Check::fail(
            "git is not installed",
            "install git: a flake in a git repository sees only tracked files and builds faster",
        )],
        Git::NotARepo => vec![Check::fail(
            format!("{} is not in a git repository", flake_dir.display()),
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
                out.push(Check::fail(
                    format!(
                        "git does not track {} (the flake cannot see it)",
                        list(&u.files)
                    ),
                    format!(
                        "git add --intent-to-add -- {} (`nixflash build` does this itself)",
                        list(&u.files)
                    ),
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

/// Can this user open serial ports? Root can; others need the group of the port (dialout on
/// Debian/Ubuntu/Fedora, uucp on Arch).
fn serial_checks() -> Vec<Check> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    if field("Uid:").get(1) == Some(&0) {
        return vec![Check::ok("serial ports: running as root")];
    }
    let mut gids = field("Groups:");
    gids.extend(field("Gid:").get(1));
    let groups = access::system_groups();
    let ports = usb_serial_ports();
    if !ports.is_empty() {
        use std::os::unix::fs::MetadataExt;
        return ports
            .iter()
            .filter_map(|port| {
                let meta = std::fs::metadata(port).ok()?;
                let others_rw = meta.mode() & 0o006 == 0o006;
                Some(if others_rw || gids.contains(&meta.gid()) {
                    Check::ok(format!("serial port {} can be opened", port.display()))
                } else {
                    let g =
                        access::group_name(meta.gid()).unwrap_or_else(|| meta.gid().to_string());
                    Check::fail(
                        format!(
                            "serial port {} belongs to group {g}, which you are not in",
                            port.display()
                        ),
                        access::join_group(&g),
                    )
                })
            })
            .collect();
    }
    let known: Vec<&(String, u32)> = ["dialout", "uucp"]
        .iter()
        .filter_map(|name| groups.iter().find(|(n, _)| n == name))
        .collect();
    vec![if known.is_empty() {
        Check::ok(
            "serial ports: no dialout/uucp group here (udev rules decide; none is plugged in)",
        )
    } else if let Some((name, _)) = known.iter().find(|(_, g)| gids.contains(g)) {
        Check::ok(format!("serial ports: you are in the {name} group"))
    } else {
        let name = &known[0].0;
        Check::fail(
            format!("serial ports: you are not in the {name} group, which owns them"),
            access::join_group(name),
        )
    }]
}

/// USB serial ports present now (the device files of USB-serial bridges and CDC-ACM boards).
fn usb_serial_ports() -> Vec<PathBuf> {
    let mut ports: Vec<PathBuf> = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("ttyUSB") || n.starts_with("ttyACM"))
                })
                .collect()
        })
        .unwrap_or_default();
    ports.sort();
    ports
}
