//! `nixflash build`, `nixflash update` and `nixflash doctor`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use nixflash::board::{Board, Database, FlashTool};
use nixflash::flake_lock::{self, Change};
use nixflash::manifest::{self, Manifest, ReadBy};
use nixflash::nix::{self, BuildOptions, Git, Nix, StdLock};
use serde::Serialize;

/// Build the firmware with Nix and show its size
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Run it anywhere inside a project made by `nixflash new` (like cargo). \
    It needs Nix, not Rust: the flake brings the toolchain. It git-adds (intent-to-add) the files \
    the flake needs that git does not track yet, keeps nix/std-Cargo.lock equal to the pinned \
    toolchain's for boards that build std (AVR), runs `nix build .#default`, keeps a ./result link \
    and prints how much flash and RAM the firmware uses.\n\nExamples:\n  nixflash build\n  \
    nixflash build --json | jq .size\n  \
    nixflash build -- --builders 'ssh://big-box x86_64-linux'\n\n",
    super::nix_args_help!()
))]
pub struct Args {
    /// Do not `git add --intent-to-add` untracked files the flake needs: print the command instead
    #[arg(long)]
    pub no_git_add: bool,
    /// Do not keep a `result` link to the build
    #[arg(long)]
    pub no_link: bool,
    /// Print the result (ELF path, size report) as JSON on stdout, for tools
    #[arg(long)]
    pub json: bool,
    /// Show each nix command nixflash runs, and how the project was read
    #[arg(long, short)]
    pub verbose: bool,
    #[command(flatten)]
    pub nix: super::NixArgs,
}

/// Update the flake's inputs (`nix flake update`), then nix/std-Cargo.lock
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n  nixflash update                 every input\n  \
    nixflash update rust-overlay    a newer toolchain manifest only\n  \
    nixflash update --std-lock      only copy the pinned toolchain's std lock again\n\n",
    super::nix_args_help!()
))]
pub struct UpdateArgs {
    /// Inputs to update (default: all of them)
    #[arg(conflicts_with = "std_lock")]
    pub inputs: Vec<String>,
    /// Do not update inputs: only make nix/std-Cargo.lock equal to the pinned toolchain's again
    #[arg(long)]
    pub std_lock: bool,
    /// Do not git-add changed files: print the command instead
    #[arg(long)]
    pub no_git_add: bool,
    /// Show each nix command nixflash runs
    #[arg(long, short)]
    pub verbose: bool,
    #[command(flatten)]
    pub nix: super::NixArgs,
}

/// Check that this machine and project can build and flash
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Checks Nix and its version, whether flakes are enabled, git tracking \
    of the flake's files, the board, that the flake evaluates (with the arguments after `--`), \
    the flasher and serial-port permissions. One line each, ✓ or ✗ with the fix; the exit code \
    is 1 when something is missing.\n\nExamples:\n  nixflash doctor\n  \
    nixflash doctor -- --offline\n\n",
    super::nix_args_help!()
))]
pub struct DoctorArgs {
    #[command(flatten)]
    pub nix: super::NixArgs,
}

/// The project around the current folder, and its board (for every command that builds).
pub fn project(verbose: bool) -> Result<(Manifest, Board)> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let manifest = manifest::discover(&cwd)?;
    if verbose {
        nix::status(
            "Project",
            &format!(
                "{} in {}, read {}",
                manifest.name,
                manifest.root.display(),
                match manifest.read_by {
                    ReadBy::CargoMetadata => "by `cargo metadata --no-deps --offline`",
                    ReadBy::Toml => "from Cargo.toml directly (no cargo answered)",
                }
            ),
        );
    }
    let db = Database::load(Some(&manifest.root))?;
    let board = db.get(manifest.board_id()?)?.clone();
    Ok((manifest, board))
}

#[derive(Serialize)]
struct BuildJson<'a> {
    package: &'a str,
    bin: &'a str,
    board: &'a str,
    #[serde(flatten)]
    built: &'a nix::Built,
}

pub fn run(a: Args) -> Result<u8> {
    let (manifest, board) = project(a.verbose)?;
    let built = nix::build(
        &manifest,
        &board,
        &BuildOptions {
            git_add: !a.no_git_add,
            verbose: a.verbose,
            link: !a.no_link,
            force_std_lock: false,
            nix_args: a.nix.nix_args.clone(),
        },
    )?;
    if a.json {
        let j = BuildJson {
            package: &manifest.name,
            bin: manifest.firmware_bin(),
            board: &board.id,
            built: &built,
        };
        println!("{}", serde_json::to_string_pretty(&j)?);
    }
    Ok(0)
}

pub fn run_update(a: UpdateArgs) -> Result<u8> {
    let (manifest, board) = project(a.verbose)?;
    let nix = Nix::find(a.verbose)?.with_args(&a.nix.nix_args);
    let flake_dir = nix::flake_dir(&manifest)?;
    let git = Git::of(&flake_dir);
    if !a.std_lock {
        let what = if a.inputs.is_empty() {
            "every input".to_string()
        } else {
            a.inputs.join(", ")
        };
        nix::status(
            "Updating",
            &format!("the flake's inputs ({what}) in flake.lock"),
        );
        let before = flake_lock::read(&flake_dir)?;
        nix::flake_update(&nix, &flake_dir, &a.inputs)?;
        report_moves(&before, &flake_lock::read(&flake_dir)?);
        if let (Git::Repo { .. }, true) = (&git, !a.no_git_add) {
            let u = nix::untracked(&flake_dir)?;
            let lock = PathBuf::from("flake.lock");
            if u.files.contains(&lock) {
                nix::intent_to_add(&flake_dir, &[lock])?;
                nix::status("Git-added", "flake.lock (intent-to-add)");
            }
        }
    }
    if !board.rust.build_std {
        nix::status(
            "Done",
            &format!(
                "the {} does not build std: no nix/std-Cargo.lock to refresh",
                board.name
            ),
        );
        return Ok(0);
    }
    let opts = BuildOptions {
        git_add: !a.no_git_add,
        verbose: a.verbose,
        link: false,
        force_std_lock: true,
        nix_args: a.nix.nix_args.clone(),
    };
    match nix::sync_std_lock(&nix, &flake_dir, &git, &board, &opts)? {
        StdLock::Checked { rust_src } => nix::status(
            "Checked",
            &format!("{} already equals {}'s", nix::STD_LOCK, rust_src.display()),
        ),
        StdLock::Updated { .. } | StdLock::Unchanged | StdLock::NotNeeded => {}
    }
    Ok(0)
}

/// One line per input of flake.lock: what `nix flake update` moved, old → new.
fn report_moves(
    before: &std::collections::BTreeMap<String, flake_lock::Locked>,
    after: &std::collections::BTreeMap<String, flake_lock::Locked>,
) {
    for change in flake_lock::changes(before, after) {
        match change {
            Change::Moved(name, old, new) => nix::status("Moved", &format!("{name} {old} → {new}")),
            Change::Unchanged(name, at) => nix::status("Unchanged", &format!("{name} {at}")),
            Change::Added(name, at) => nix::status("Locked", &format!("{name} {at} (new)")),
            Change::Removed(name, at) => nix::status("Removed", &format!("{name} (was {at})")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// doctor

struct Report {
    failed: usize,
}

impl Report {
    fn ok(&mut self, what: &str) {
        println!("✓ {what}");
    }
    fn bad(&mut self, what: &str, fix: &str) {
        self.failed += 1;
        println!("✗ {what} — fix: {fix}");
    }
}

pub fn run_doctor(a: DoctorArgs) -> Result<u8> {
    let mut r = Report { failed: 0 };

    // Nix and flakes.
    let found = Nix::find(false).map(|n| n.with_args(&a.nix.nix_args));
    match &found {
        Err(_) => r.bad(
            "nix is not installed (no `nix` on PATH)",
            "install Nix: sh <(curl -L https://nixos.org/nix/install) --daemon (https://nixos.org/download)",
        ),
        Ok(nix) => {
            match nix.version() {
                Ok(v) if nix::parse_version(&v).is_some_and(|v| v < (2, 4)) => r.bad(
                    &format!("nix {v} ({}) is older than 2.4", nix.path.display()),
                    "install a current Nix (https://nixos.org/download): nixflash needs flakes and `nix build --json`",
                ),
                Ok(v) => r.ok(&format!("nix {v} ({})", nix.path.display())),
                Err(e) => r.bad(
                    &format!("nix at {} does not run: {e:#}", nix.path.display()),
                    "reinstall Nix (https://nixos.org/download)",
                ),
            }
            match flakes_enabled(nix) {
                Some(true) => r.ok("flakes are enabled"),
                Some(false) => r.bad(
                    "flakes are not enabled (nixflash enables them for its own calls, but `nix build`, `nix develop` and direnv need them)",
                    "add `experimental-features = nix-command flakes` to ~/.config/nix/nix.conf",
                ),
                None => r.bad(
                    "cannot read nix's configuration",
                    "run `nix config show` to see what is wrong",
                ),
            }
        }
    }

    // The project.
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let project = manifest::discover(&cwd);
    let manifest = match project {
        Err(e) => {
            r.bad(
                &format!("no project here: {}", first_line(&e)),
                "run it inside a project, or create one: nixflash new blinky --board uno",
            );
            None
        }
        Ok(m) => Some(m),
    };
    let mut board: Option<Board> = None;
    let mut flake_dir = None;
    if let Some(m) = &manifest {
        match nix::flake_dir(m) {
            Err(_) => r.bad(
                &format!("{} has no flake.nix", m.root.display()),
                &format!(
                    "nixflash init --board {}",
                    m.board.as_deref().unwrap_or("<id>")
                ),
            ),
            Ok(dir) => {
                check_git(&mut r, &dir)?;
                flake_dir = Some(dir);
            }
        }
        match m.board_id() {
            Err(_) => r.bad(
                "Cargo.toml names no board",
                "add [package.metadata.nixflash] board = \"<id>\" to Cargo.toml (ids: `nixflash boards`)",
            ),
            Ok(id) => match Database::load(Some(&m.root)).and_then(|db| db.get(id).cloned()) {
                Ok(b) => {
                    r.ok(&format!("board {} ({})", b.id, b.name));
                    board = Some(b);
                }
                Err(e) => r.bad(
                    &format!("board `{id}` is unknown: {}", first_line(&e)),
                    "choose an id from `nixflash boards` for [package.metadata.nixflash] board in Cargo.toml",
                ),
            },
        }
    }

    // The flake, evaluated as a build would evaluate it.
    if let (Ok(nix), Some(dir)) = (&found, &flake_dir) {
        nix::status(
            "Evaluating",
            "the flake's firmware derivation (the first time, nix downloads the pinned inputs)…",
        );
        match nix::evaluate_firmware(nix, dir) {
            Ok(drv) => r.ok(&format!("the flake evaluates: the firmware is {drv}")),
            Err(e) => r.bad(
                &format!("the flake does not evaluate: {}", first_line(&e)),
                "run `nixflash build` to see nix's whole message",
            ),
        }
    }

    // The flasher.
    if let Some(b) = &board {
        let tool = b.flash.tool.as_str();
        match which::which(tool) {
            Ok(p) => r.ok(&format!("{tool} ({})", p.display())),
            Err(_) => r.bad(
                &format!("{tool} (the {}'s flasher) is not on PATH", b.name),
                &format!(
                    "enter the project's dev shell (`nix develop`, or `direnv allow` once), which has it; or {}",
                    match b.flash.tool {
                        FlashTool::Ravedude => "cargo install ravedude (it needs avrdude too)",
                        FlashTool::Espflash => "cargo install espflash",
                    }
                ),
            ),
        }
    }

    // Serial ports.
    if cfg!(target_os = "linux") {
        check_serial(&mut r);
    }

    Ok(if r.failed == 0 { 0 } else { 1 })
}

fn first_line(e: &anyhow::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Whether the user's nix.conf enables flakes (without nixflash's own flag).
fn flakes_enabled(nix: &Nix) -> Option<bool> {
    let v = nix.version().ok().and_then(|v| nix::parse_version(&v));
    let sub: &[&str] = if v.is_some_and(|v| v >= (2, 20)) {
        &["config", "show", "experimental-features"]
    } else {
        &["show-config"]
    };
    let out = Command::new(&nix.path)
        .args(["--extra-experimental-features", "nix-command"])
        .args(sub)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let features = text
        .lines()
        .find_map(|l| l.strip_prefix("experimental-features ="))
        .unwrap_or(&text);
    Some(features.split_whitespace().any(|f| f == "flakes"))
}

fn check_git(r: &mut Report, flake_dir: &Path) -> Result<()> {
    match Git::of(flake_dir) {
        Git::NotInstalled => r.bad(
            "git is not installed",
            "install git: a flake in a git repository sees only tracked files and builds faster",
        ),
        Git::NotARepo => r.bad(
            &format!("{} is not in a git repository", flake_dir.display()),
            &format!("cd {} && git init && git add -A", flake_dir.display()),
        ),
        Git::Repo { root } => {
            let u = nix::untracked(flake_dir)?;
            let mut missing: Vec<String> =
                u.files.iter().map(|p| p.display().to_string()).collect();
            if missing.is_empty() && u.ignored.is_empty() {
                r.ok(&format!(
                    "git repository {}, every file the flake needs is tracked",
                    root.display()
                ));
            } else {
                if !missing.is_empty() {
                    r.bad(
                        &format!(
                            "git does not track {} (the flake cannot see it)",
                            missing.join(" ")
                        ),
                        &format!(
                            "git add --intent-to-add -- {} (`nixflash build` does this itself)",
                            missing.join(" ")
                        ),
                    );
                }
                if !u.ignored.is_empty() {
                    missing = u.ignored.iter().map(|p| p.display().to_string()).collect();
                    r.bad(
                        &format!(
                            "{} is ignored by .gitignore (the flake cannot see it)",
                            missing.join(" ")
                        ),
                        &format!(
                            "remove it from .gitignore, or git add --force --intent-to-add -- {}",
                            missing.join(" ")
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}

/// Can this user open serial ports? Root can; others need the group of the port (dialout on
/// Debian/Ubuntu/Fedora, uucp on Arch).
fn check_serial(r: &mut Report) {
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
        r.ok("serial ports: running as root");
        return;
    }
    let mut gids = field("Groups:");
    gids.extend(field("Gid:").get(1));
    let groups = nixflash::serial::system_groups();
    let group_name = |gid: u32| -> String {
        groups
            .iter()
            .find_map(|(name, id)| (*id == gid).then(|| name.clone()))
            .unwrap_or_else(|| gid.to_string())
    };
    let ports = serial_ports();
    if !ports.is_empty() {
        use std::os::unix::fs::MetadataExt;
        for port in ports {
            let Ok(meta) = std::fs::metadata(&port) else {
                continue;
            };
            let others_rw = meta.mode() & 0o006 == 0o006;
            if others_rw || gids.contains(&meta.gid()) {
                r.ok(&format!("serial port {} can be opened", port.display()));
            } else {
                let g = group_name(meta.gid());
                r.bad(
                    &format!(
                        "serial port {} belongs to group {g}, which you are not in",
                        port.display()
                    ),
                    &format!("sudo usermod -aG {g} $USER, then log out and in again"),
                );
            }
        }
        return;
    }
    let known: Vec<(String, u32)> = ["dialout", "uucp"]
        .iter()
        .filter_map(|name| groups.iter().find(|(n, _)| n == name).cloned())
        .collect();
    if known.is_empty() {
        r.ok("serial ports: no dialout/uucp group here (udev rules decide; none is plugged in)");
    } else if let Some((name, _)) = known.iter().find(|(_, g)| gids.contains(g)) {
        r.ok(&format!("serial ports: you are in the {name} group"));
    } else {
        let name = &known[0].0;
        r.bad(
            &format!("serial ports: you are not in the {name} group, which owns them"),
            &format!("sudo usermod -aG {name} $USER, then log out and in again"),
        );
    }
}

/// USB serial ports present now.
fn serial_ports() -> Vec<PathBuf> {
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
