//! `nixflash doctor`: prints the checks of [`nixflash::doctor`].

use anyhow::Result;
use nixflash::context::Context;
use nixflash::doctor::{self, Check, Status};

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

fn print(c: &Check) {
    let mark = match c.status {
        Status::Ok => "✓",
        Status::Warn => "!",
        Status::Fail => "✗",
    };
    match &c.fix {
        Some(fix) => println!("{mark} {} — fix: {fix}", c.what),
        None => println!("{mark} {}", c.what),
    }
}

pub fn run(a: DoctorArgs) -> Result<u8> {
    let ctx = Context::current()?;
    let checks = doctor::run(&ctx, &a.nix.nix_args, print);
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    Ok(u8::from(failed))
}
