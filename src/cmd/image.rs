//! `nixflash image`, and the settings `flash --set` writes with the firmware.

use std::path::PathBuf;

use crate::board::Board;
use crate::error::{Failure, Kind};
use crate::flash::image;
use anyhow::Result;

/// Build, then write what the board receives to one file (ESP32 boards)
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n  nixflash image                              build, then write <name>-<board>.bin\n  \
    nixflash image -o lamp.bin --set ssid=Home --set password=secret\n  \
    nixflash image --no-build -o factory.bin\n\n\
    The file is one merged binary from flash offset 0, as production programmers and \
    `espflash write-bin 0x0 <file>` take it: the bootloader at 0x0, the partition table at \
    0x8000, the app at 0x10000, and the settings region at the offset of the `settings` \
    partition of the project's partitions.csv (a project made with `-o wifi`). `nixflash flash` \
    with settings writes exactly this file to the board. ESP32 boards only, for now.\n\n\
    Settings come from --set, then environment variables NIXFLASH_SET_<KEY> (NIXFLASH_SET_SSID \
    is `ssid`), then the project's git-ignored settings.toml (lines `key = \"value\"`); the \
    first that names a key wins. They are never in the firmware, the Nix store or git; the \
    image holds them, so keep it as you keep the password. An image is one board's: it takes \
    settings.toml's top-level lines, not its [device.\"<serial>\"] sections, and refuses \
    {index} and {serial} (for flashing several boards at once).\n\n",
    super::nix_args_help!()
))]
pub struct Args {
    /// The file to write (default: <name>-<board>.bin in the project's root)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A setting for the settings region, `key=value` (repeatable): e.g. --set ssid=Home
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The board, for an ELF given with --elf (default: the project's; outside a project, the
    /// one the ELF's chip tells)
    #[arg(long, short, value_name = "ID", requires = "elf")]
    pub board: Option<String>,
    #[command(flatten, next_help_heading = "Firmware")]
    pub firmware: super::firmware::FirmwareArgs,
    #[command(flatten, next_help_heading = "Building")]
    pub flags: super::NixFlags,
}

pub fn run(a: Args) -> Result<u8> {
    let ctx = a.flags.context()?;
    let board = super::firmware::board(
        &ctx,
        a.board.as_deref(),
        a.firmware.elf.as_deref(),
        true,
        |x, y| x.family_id == y.family_id && x.flash == y.flash,
    )?;
    let board: &Board = &board;
    if !image::supported(board) {
        return Err(image::unsupported(board, "`nixflash image`", "images"));
    }
    let project = match ctx.root {
        Some(_) => Some(ctx.manifest()?),
        None => None,
    };
    let root = project.map(|p| p.root.clone());
    let layout = image::layout(root.as_deref())?;
    // Everything that can be refused is, before a long build.
    let prepared = image::prepare(board, root.as_deref(), &layout, &a.set)?;
    if layout.region.is_none() {
        crate::flash::settings::note_unwritten(root.as_deref(), &super::Terminal)?;
    }
    crate::flash::settings::note_sections(root.as_deref(), &super::Terminal)?;
    let out = match (&a.output, project, &a.firmware.elf) {
        (Some(o), _, _) => ctx.cwd.join(o),
        (None, Some(p), _) => p
            .root
            .join(format!("{}-{}.bin", p.firmware_bin(), board.id)),
        (None, None, Some(elf)) => ctx.cwd.join(format!(
            "{}-{}.bin",
            elf.file_stem().unwrap_or_default().to_string_lossy(),
            board.id
        )),
        (None, None, None) => {
            return Err(Failure::new(
                Kind::NotAProject,
                "there is no project here, and no --elf to make an image of",
            )
            .hint("run it in a nixflash project, or pass --elf <firmware> --board <id>")
            .into())
        }
    };
    let firmware = a.firmware.check(&ctx, "make an image of")?;
    let nix = a.flags.nix();
    let flake = crate::tool::Flake::of(&ctx, nix.as_ref());
    let flasher = crate::flash::find(board, &flake, &super::Terminal)?;
    let elf = super::firmware::FirmwareArgs::get(firmware, &ctx, &a.flags)?;
    let regions = prepared.as_ref().map(|(_, r)| r.as_slice());
    let made = image::write(
        &flasher,
        board,
        &elf,
        &layout,
        regions,
        &out,
        &super::Terminal,
    )?;
    let what = match (&prepared, made.region) {
        (Some((s, _)), Some(r)) => format!(
            "bootloader, partition table, app and settings ({}) at {:#x}",
            s.describe(),
            r.offset
        ),
        (_, _) if layout.region.is_some() => format!(
            "bootloader, partition table and app; the settings region at {:#x} is erased (no \
             settings given: the firmware will say so)",
            layout.region.map_or(0, |r| r.offset)
        ),
        _ => "bootloader, partition table and app".to_string(),
    };
    eprintln!(
        "Wrote {} ({} bytes from flash offset 0: {what}).",
        super::path(&out),
        made.size
    );
    Ok(0)
}
