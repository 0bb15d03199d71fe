//! `nixflash doctor`: prints the checks of [`crate::doctor`].

use crate::context::Context;
use crate::doctor::{self, Check, Status};
use anyhow::Result;

/// Check that this machine and project can build and flash
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Checks Nix (its version against what the pinned nixpkgs needs), whether flakes are \
    enabled, and in a project: git tracking of the flake's files, that the files a build \
    reads are there and readable (Cargo.toml, Cargo.lock, .cargo/config.toml, flake.lock, \
    rust-toolchain.toml, nix/std-Cargo.lock), the board (and that its files are the board's), that the flake evaluates \
    (with the arguments after `--`), the flasher, serial-port permissions; on Linux in a \
    Cortex-M project (or with --probes), that udev rules let you open the debug probes and the \
    plugdev group they name (`--udev-rules` prints the rules to install). Outside a project only \
    the system is checked. One line each: ✓ fine, ! works but worth knowing, ✗ will fail, with \
    the fix; the exit code is 1 only when something will fail.\n\nExamples:\n  nixflash doctor\n  \
    nixflash doctor --json | jq '.checks[] | select(.status != \"ok\")'\n  \
    nixflash doctor --probes\n  \
    nixflash doctor --udev-rules | sudo tee /etc/udev/rules.d/69-nixflash-probes.rules\n  \
    nixflash doctor -- --offline\n\n",
    super::nix_args_help!()
))]
pub struct DoctorArgs {
    /// Print the checks as JSON for tools (`status` is ok, warn or fail) instead of lines
    #[arg(long)]
    pub json: bool,
    /// Also check access to debug probes (udev rules, the plugdev group) outside a Cortex-M
    /// project, where it is checked anyway
    #[arg(long)]
    pub probes: bool,
    /// Print the udev rules that let you open the debug probes nixflash knows, and do nothing else
    #[arg(long, conflicts_with_all = ["json", "probes"])]
    pub udev_rules: bool,
    #[command(flatten)]
    pub nix: super::NixArgs,
}

fn print(c: &Check) {
    use super::terminal::{ERROR, STEP, WARN};
    let (mark, style) = match c.status {
        Status::Ok => ("✓", STEP),
        Status::Warn => ("!", WARN),
        Status::Fail => ("✗", ERROR),
    };
    match &c.fix {
        Some(fix) => super::outln!("{style}{mark}{style:#} {} — fix: {fix}", c.what),
        None => super::outln!("{style}{mark}{style:#} {}", c.what),
    }
}

pub fn run(a: DoctorArgs) -> Result<u8> {
    let json = a.json;
    super::answer_failure(json, check(a))
}

fn check(a: DoctorArgs) -> Result<u8> {
    let ctx = Context::current()?;
    if a.udev_rules {
        let probes = crate::serial::probes::known(&ctx.db);
        super::outp!("{}", doctor::udev_rules(&probes));
        return Ok(0);
    }
    let nix = &a.nix.nix_args;
    let checks = if a.json {
        doctor::run(&ctx, nix, a.probes, &super::Terminal, |_| {})
    } else {
        doctor::run(&ctx, nix, a.probes, &super::Terminal, print)
    };
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    if a.json {
        let j = serde_json::json!({ "ok": !failed, "checks": checks });
        super::outln!("{}", serde_json::to_string_pretty(&j)?);
    }
    Ok(u8::from(failed))
}
