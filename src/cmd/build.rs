//! `nixflash build`.

use crate::nix::{self, BuildOptions};
use anyhow::Result;
use serde::Serialize;

/// Build the firmware with Nix and show its size
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Run it anywhere inside a project made by `nixflash new` (like cargo). \
    It needs Nix (2.18 or newer, checked first), not Rust: the flake brings the toolchain. A \
    missing flake.lock is written again from nixflash's tested pins. It git-adds (intent-to-add) the files \
    the flake needs that git does not track yet, keeps nix/std-Cargo.lock equal to the pinned \
    toolchain's for boards that build std (AVR), runs `nix build .#default`, keeps a ./result link \
    and prints how much flash and RAM the firmware uses, and the SHA-256 of the ELF (as `sha256sum` \
    prints it) and of the bytes that go to the board, settings excluded (AVR, RP2, Cortex-M: the \
    ELF's flash bytes as `objcopy -O binary --gap-fill 0xff` writes them; ESP32: the app image \
    `espflash save-image` writes).\n\nExamples:\n  nixflash build\n  \
    nixflash build --json | jq .size     (on failure: {\"ok\": false, \"kind\", \"error\", \"diagnosis\", \"hints\"})\n  \
    nixflash build --json | jq .sha256   {\"elf\": <hex>, \"image\": <hex>, \"image_size\": <bytes>, \"image_is\": <what it is>}\n  \
    nixflash build -- --builders 'ssh://big-box x86_64-linux'\n\n",
    super::nix_args_help!()
))]
pub struct Args {
    /// Do not keep a `result` link to the build
    #[arg(long)]
    pub no_link: bool,
    /// Print the result (ELF path, size report, SHA-256) as JSON on stdout, for tools
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub flags: super::NixFlags,
}

#[derive(Serialize)]
struct BuildJson<'a> {
    ok: bool,
    package: &'a str,
    bin: &'a str,
    board: &'a str,
    #[serde(flatten)]
    built: &'a nix::Built,
}

pub fn run(a: Args) -> Result<u8> {
    let json = a.json;
    super::answer_failure(json, build(a).map(|()| 0))
}

fn build(a: Args) -> Result<()> {
    let ctx = a.flags.context()?;
    let (manifest, board) = (ctx.manifest()?, ctx.board_to_build()?);
    let opts = BuildOptions {
        link: !a.no_link,
        ..a.flags.build_options()
    };
    let built = super::firmware::build(&ctx, &a.flags, &opts)?;
    if a.json {
        let j = BuildJson {
            ok: true,
            package: &manifest.name,
            bin: manifest.firmware_bin(),
            board: &board.id,
            built: &built,
        };
        super::outln!("{}", serde_json::to_string_pretty(&j)?);
    }
    Ok(())
}
