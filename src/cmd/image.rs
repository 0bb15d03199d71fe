//! `nixflash image`, and the settings `flash --set` writes with the firmware.

use std::path::PathBuf;

use crate::board::Board;
use crate::error::{Failure, Kind};
use crate::firmware::hash::Hashes;
use crate::flash::{image, ImageKind};
use anyhow::Result;
use serde::Serialize;

/// Build, then write what the board receives, settings included, to one file
#[derive(clap::Args)]
#[command(after_help = concat!(
    "Examples:\n  nixflash image                              build, then write <name>-<board>.bin/.hex/.uf2\n  \
    nixflash image -o lamp.bin --set ssid=Home --set password=secret\n  \
    nixflash image --no-build -o desk.hex --set name=desk-1\n\n\
    What the file is depends on the board:\n  \
    ESP32  one merged binary from flash offset 0, as production programmers and `espflash \
    write-bin 0x0 <file>` take it: the bootloader at 0x0, the partition table at 0x8000, the app \
    at 0x10000, and the settings region at the offset of the `settings` partition of the \
    project's partitions.csv (a project made with `-o wifi`).\n  \
    AVR    an Intel HEX file (`avrdude -U flash:w:<file>:i`) of the firmware and the settings \
    region below the bootloader (boards/README.md says where, per board).\n  \
    RP2    a UF2 file to copy onto the board's boot drive: the firmware's blocks, then the \
    settings region's (the flash's last 4 KiB sector).\n\
    `nixflash flash` with settings gives the board exactly these bytes.\n\n\
    --json prints {\"ok\", \"file\", \"kind\" (esp-merged, intel-hex, uf2), \"size\", \
    \"settings_at\" (the region's offset, or null), \"sha256\": {\"file\", \"elf\", \"image\", \
    \"image_size\", \"image_is\"}}; on failure {\"ok\": false, \"kind\", \"error\", \"hints\"}.\n\n\
    It prints the firmware's SHA-256 as `build` does (the ELF's, and its flash image's without \
    settings), then the SHA-256 of the file it wrote, which includes the settings when it has \
    them.\n\n\
    Settings come from --set, then environment variables NIXFLASH_SET_<KEY> (NIXFLASH_SET_SSID \
    is `ssid`), then the project's git-ignored settings.toml (lines `key = \"value\"`); the \
    first that names a key wins. They are never in the firmware, the Nix store or git; the \
    image holds them, so keep it as you keep the password. An image is one board's: it takes \
    settings.toml's top-level lines, not its [device.\"<serial>\"] sections, and refuses \
    {index} and {serial} (for flashing several boards at once).\n\n",
    super::nix_args_help!()
))]
pub struct Args {
    /// The file to write (default: <name>-<board>.bin, .hex or .uf2 in the project's root)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A setting for the settings region, `key=value` (repeatable): e.g. --set ssid=Home
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The board, for an ELF given with --elf (default: the project's; outside a project, the
    /// one the ELF's chip tells)
    #[arg(long, short, value_name = "ID", requires = "elf")]
    pub board: Option<String>,
    /// Print what was written (file, kind, size, SHA-256s) as JSON on stdout, for tools
    #[arg(long)]
    pub json: bool,
    #[command(flatten, next_help_heading = "Firmware")]
    pub firmware: super::firmware::FirmwareArgs,
    #[command(flatten, next_help_heading = "Building")]
    pub flags: super::NixFlags,
}

/// `image --json`: the file written and the hashes the terminal shows.
#[derive(Serialize)]
struct ImageJson<'a> {
    ok: bool,
    file: &'a std::path::Path,
    kind: ImageKind,
    size: u64,
    settings_at: Option<u32>,
    sha256: FileHashes<'a>,
}

#[derive(Serialize)]
struct FileHashes<'a> {
    file: &'a str,
    #[serde(flatten)]
    firmware: &'a Hashes,
}

pub fn run(a: Args) -> Result<u8> {
    let json = a.json;
    super::answer_failure(json, image(a).map(|()| 0))
}

fn image(a: Args) -> Result<()> {
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
    let layout = image::layout(board, root.as_deref())?;
    let kind = image::kind(board).expect("checked above");
    let ext = kind.extension();
    // Everything that can be refused is, before a long build.
    let gathered = image::gather(board, root.as_deref(), &layout, &a.set)?;
    let prepared = image::prepare(board, &layout, &gathered)?;
    crate::flash::settings::notes(board, &layout, &gathered, true, &super::Terminal);
    let out = match (&a.output, project, &a.firmware.elf) {
        (Some(o), _, _) => ctx.cwd.join(o),
        (None, Some(p), _) => p
            .root
            .join(format!("{}-{}.{ext}", p.firmware_bin(), board.id)),
        (None, None, Some(elf)) => ctx.cwd.join(format!(
            "{}-{}.{ext}",
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
    let flasher = match kind {
        ImageKind::Espflash => Some(crate::flash::find(board, &flake, &super::Terminal)?),
        _ => None,
    };
    let (elf, hashes) = super::firmware::FirmwareArgs::get(firmware, &ctx, &a.flags, board)?;
    let regions = prepared.as_ref().map(|(_, r)| r.as_slice());
    let made = image::write(
        flasher.as_ref(),
        board,
        &elf,
        &layout,
        regions,
        &out,
        &super::Terminal,
    )?;
    let what = describe(kind, &made, prepared.as_ref().map(|(s, _)| s), &layout);
    let sha256 = crate::firmware::hash::sha256_file(&out)?;
    super::status(
        "SHA-256",
        &crate::firmware::hash::sum_line(&sha256, &out.display().to_string()),
    );
    let with = match made.region {
        Some(_) => "; its SHA-256 above includes the settings",
        None => "",
    };
    eprintln!("Wrote {} ({what}{with}).", super::path(&out));
    if a.json {
        let j = ImageJson {
            ok: true,
            file: &out,
            kind,
            size: made.size,
            settings_at: made.region.map(|r| r.offset),
            sha256: FileHashes {
                file: &sha256,
                firmware: &hashes,
            },
        };
        super::outln!("{}", serde_json::to_string_pretty(&j)?);
    }
    Ok(())
}

/// What the image holds, as the closing line says it.
fn describe(
    kind: ImageKind,
    made: &image::Made,
    settings: Option<&crate::settings::Settings>,
    layout: &image::Layout,
) -> String {
    let with = match (settings, made.region) {
        (Some(s), Some(r)) => Some(format!("settings ({}) at {:#x}", s.describe(), r.offset)),
        _ => None,
    };
    let size = made.size;
    if kind == ImageKind::Espflash {
        let start = format!("{size} bytes from flash offset 0: bootloader, partition table");
        return match (&with, layout.region) {
            (Some(s), _) => format!("{start}, app and {s}"),
            (None, Some(r)) => format!(
                "{start} and app; the settings region at {:#x} is erased (no settings given: the \
                 firmware will say so)",
                r.offset
            ),
            (None, None) => format!("{start} and app"),
        };
    }
    let file = if kind == ImageKind::Uf2 {
        "UF2"
    } else {
        "Intel HEX"
    };
    let rest = match (&with, layout.region) {
        (Some(s), _) => format!(" and {s}"),
        (None, Some(r)) => format!(
            "; no settings given: the settings region at {:#x} is left as the board has it",
            r.offset
        ),
        (None, None) => String::new(),
    };
    format!("{file}, {size} bytes: the firmware{rest}")
}
