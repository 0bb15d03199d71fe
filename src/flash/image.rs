//! What a board receives, as one file, with the settings region ([`crate::settings`]) in it:
//! - ESP32: one merged binary from flash offset 0 (bootloader, partition table, app) made by the
//!   family's flasher (`flasher.image-args`, espflash's `save-image --merge`), the region written
//!   at the offset of the partition table's `settings` partition;
//! - AVR: an Intel HEX file of the firmware and the region at the board's `memory.settings`;
//! - RP2: a UF2 file, the firmware's blocks and then the region's.
//!
//! `nixflash image` writes it to a file; `nixflash flash` with settings gives the board the same
//! bytes: the ESP32 image written from offset 0 (`flasher.write-image-args`), an ELF with the
//! region as one more segment to ravedude ([`super::segments`]), the UF2 file onto the boot drive.
//!
//! A project's own partition table (`partitions.csv` in its root) goes to the flasher with
//! `flasher.partition-table-args`, put before the argument that names the firmware.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::board::Board;
use crate::error::{Failure, Kind};
use crate::flash::segments::Segments;
use crate::flash::{fill_args, Flasher, ImageKind};
use crate::process::Cmd;
use crate::report::{Event, Reporter};
use crate::settings::partitions::{self, Region};
use crate::settings::{self, Gathered, Settings};

/// Where the settings go, and what a project with them is flashed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The project's partitions.csv, if it has one.
    pub partition_table: Option<PathBuf>,
    /// Its `settings` partition, if it has one.
    pub region: Option<Region>,
}

/// The layout of `board`'s firmware in the project at `root` (if any): the board's own region
/// (`memory.settings`), else the project's partitions.csv and its `settings` partition.
pub fn layout(board: &Board, root: Option<&Path>) -> Result<Layout> {
    if let Some(r) = board.memory.settings {
        return Ok(Layout {
            partition_table: None,
            region: Some(Region {
                offset: u32::try_from(r.at).context("`memory.settings.at` is past 4 GiB")?,
                size: u32::try_from(r.size).context("`memory.settings.size` is too large")?,
            }),
        });
    }
    let Some(table) = root
        .map(|r| r.join(partitions::FILE))
        .filter(|p| p.is_file())
    else {
        return Ok(Layout {
            partition_table: None,
            region: None,
        });
    };
    Ok(Layout {
        region: partitions::settings_region(&table)?,
        partition_table: Some(table),
    })
}

/// What `nixflash image` writes for the board's family, if anything.
pub fn kind(board: &Board) -> Option<ImageKind> {
    board.family().flasher.image_kind()
}

/// Whether the board's family makes images (and so keeps settings).
pub fn supported(board: &Board) -> bool {
    kind(board).is_some()
}

/// The family's image commands, or the refusal of a family without them.
fn images(board: &Board) -> Result<&crate::board::flasher::Espflash> {
    board
        .family()
        .flasher
        .images()
        .ok_or_else(|| unsupported(board, "`nixflash image`", "images"))
}

/// The refusal for a family without images or settings regions: `what` (`--set`) and what it
/// lacks (`settings regions`).
pub fn unsupported(board: &Board, what: &str, lacks: &str) -> anyhow::Error {
    Failure::new(
        Kind::Unsupported,
        format!(
            "{what}: the {} ({}) has no {lacks} in nixflash yet",
            board.name,
            board.family().name
        ),
    )
    .hint("nothing was written or flashed")
    .into()
}

/// The settings of a run, gathered once: those `flags` name, then the environment's and the
/// project's settings file's, checked; refused (one line, before anything is built) when
/// `flags` name settings the firmware has nowhere to keep.
pub fn gather(
    board: &Board,
    root: Option<&Path>,
    layout: &Layout,
    flags: &[String],
) -> Result<Gathered> {
    if !flags.is_empty() && !supported(board) {
        return Err(unsupported(board, "--set", "settings regions"));
    }
    let gathered = settings::gather_all(flags, std::env::vars_os(), root)?;
    if layout.region.is_none() && !flags.is_empty() {
        let why = match &layout.partition_table {
            Some(t) => format!("{} has no `{}` partition", t.display(), settings::PARTITION),
            None => match root {
                Some(r) => format!("the project has no {}", r.join(partitions::FILE).display()),
                None => "there is no project here (and so no partition table)".to_string(),
            },
        };
        return Err(Failure::new(
            Kind::Setting,
            format!("--set: this firmware has no settings region ({why})"),
        )
        .hint(
            "nothing was written or flashed; a project made with `-o wifi` has one (its \
             partitions.csv names a `settings` partition)",
        )
        .into());
    }
    Ok(gathered)
}

/// Whether the `gathered` settings are written: there are some, and a region to hold them.
pub fn writes(board: &Board, layout: &Layout, gathered: &Gathered) -> bool {
    supported(board) && layout.region.is_some() && !gathered.is_empty()
}

/// One board's settings of `gathered`, and their encoded region, when they are written ([`writes`]).
pub fn prepare(
    board: &Board,
    layout: &Layout,
    gathered: &Gathered,
) -> Result<Option<(Settings, Vec<u8>)>> {
    if !writes(board, layout, gathered) {
        return Ok(None);
    }
    let s = gathered.single()?;
    if s.is_empty() {
        // Only settings.toml's device sections: none of one board's.
        return Ok(None);
    }
    let region = settings::encode_sized(&s, region_size(layout))?;
    Ok(Some((s, region)))
}

/// The size of the layout's settings region.
pub fn region_size(layout: &Layout) -> usize {
    layout.region.map_or(settings::SIZE, |r| r.size as usize)
}

/// The flasher's command that saves the merged image of `elf` to `out`.
pub fn save_command(
    flasher: &Flasher,
    board: &Board,
    elf: &Path,
    table: Option<&Path>,
    out: &Path,
) -> Result<Cmd> {
    let elf = elf.display().to_string();
    let out = out.display().to_string();
    let size = flash_size(board)?;
    let fill = [
        ("elf", elf.as_str()),
        ("image", out.as_str()),
        ("flash_size", size.as_str()),
    ];
    let args = fill_args(board, &images(board)?.image_args, table, &fill)?;
    Ok(flasher.command(&args))
}

/// The board's flash size as espflash names it (`4mb`), for the bootloader's header: an image
/// written with `write-bin` is not adjusted to the chip as `espflash flash` adjusts it.
fn flash_size(board: &Board) -> Result<String> {
    const MIB: u64 = 1024 * 1024;
    let bytes = board.memory.flash;
    if bytes % MIB != 0 || !(bytes / MIB).is_power_of_two() {
        return Err(Failure::new(
            Kind::Unsupported,
            format!(
            "the {}'s flash is {bytes} bytes, not a power of two MiB: no image can say its size",
            board.name
        ),
        )
        .hint(format!(
            "fix `memory.flash` in the board's file ({})",
            board.id
        ))
        .into());
    }
    Ok(format!("{}mb", bytes / MIB))
}

/// The flasher's command that writes `image` to the board from offset 0.
pub fn write_command(flasher: &Flasher, board: &Board, image: &Path, port: &str) -> Result<Cmd> {
    let image = image.display().to_string();
    let fill = [("port", port), ("image", image.as_str())];
    let args = fill_args(board, &images(board)?.write_image_args, None, &fill)?;
    Ok(flasher.command(&args))
}

/// What [`make`] wrote.
#[derive(Debug)]
pub struct Made {
    /// The image's size in bytes.
    pub size: u64,
    /// Where the settings region went, if settings were written.
    pub region: Option<Region>,
}

/// Writes the image of `elf` to `out` with `settings` (an encoded region) in it, if given: the
/// flasher's merged binary (`flasher` is needed for it), or the family's own kind of file.
pub fn make(
    flasher: Option<&Flasher>,
    board: &Board,
    elf: &Path,
    layout: &Layout,
    settings: Option<&[u8]>,
    out: &Path,
) -> Result<Made> {
    crate::firmware::check(board, elf)?;
    let kind = kind(board).ok_or_else(|| unsupported(board, "`nixflash image`", "images"))?;
    let region = settings.zip(layout.region);
    let bytes = match kind {
        ImageKind::Espflash => {
            let flasher = flasher.context("espflash is needed to make an ESP32 image")?;
            return make_merged(flasher, board, elf, layout, settings, out);
        }
        ImageKind::IntelHex => with_region(board, elf, region)?.1.to_ihex().into_bytes(),
        ImageKind::Uf2 => uf2(board, elf, region)?.bytes,
    };
    std::fs::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Made {
        size: bytes.len() as u64,
        region: region.map(|(_, r)| r),
    })
}

/// Writes what ravedude uploads for `elf` with the settings `region` (an encoded region, at the
/// layout's place) to `out`: an ELF with the region as one more loadable segment.
pub fn make_upload_elf(
    board: &Board,
    elf: &Path,
    layout: &Layout,
    region: &[u8],
    out: &Path,
) -> Result<Made> {
    let place = layout
        .region
        .with_context(|| format!("the {} has no settings region", board.name))?;
    let (_, all) = with_region(board, elf, Some((region, place)))?;
    let bytes = all.to_elf()?;
    std::fs::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Made {
        size: bytes.len() as u64,
        region: Some(place),
    })
}

/// The UF2 file of `elf` for `board`'s boot drive, with the settings `region` (an encoded region
/// and its place) as blocks after the firmware's.
pub fn uf2(board: &Board, elf: &Path, region: Option<(&[u8], Region)>) -> Result<super::uf2::Uf2> {
    let (firmware, _) = with_region(board, elf, region)?;
    let family_id = board
        .family()
        .flasher
        .uf2_family_id(board)
        .with_context(|| format!("board `{}` has no UF2 family", board.id))?;
    let region = region.map(|(bytes, r)| (r.offset, bytes));
    super::uf2::from_runs(&firmware.runs, region, family_id, board.family())
        .with_context(|| format!("cannot make a UF2 file of {}", elf.display()))
}

/// The firmware's loadable bytes, and those with the settings `region` added (refused when the
/// firmware reaches into it).
fn with_region(
    board: &Board,
    elf: &Path,
    region: Option<(&[u8], Region)>,
) -> Result<(Segments, Segments)> {
    let data = std::fs::read(elf)
        .with_context(|| format!("cannot read the firmware {}", elf.display()))?;
    let firmware = Segments::of_elf(&data)
        .with_context(|| format!("cannot read the loadable bytes of {}", elf.display()))?;
    let mut all = firmware.clone();
    if let Some((bytes, r)) = region {
        all.add_region(r.offset, bytes, &board.name)?;
    }
    Ok((firmware, all))
}

/// The ESP32's image: the flasher's merged binary, then `settings` at the settings partition's
/// offset.
fn make_merged(
    flasher: &Flasher,
    board: &Board,
    elf: &Path,
    layout: &Layout,
    settings: Option<&[u8]>,
    out: &Path,
) -> Result<Made> {
    let cmd = save_command(flasher, board, elf, layout.partition_table.as_deref(), out)?;
    run_save(flasher, &cmd)?;
    let region = match (settings, layout.region) {
        (Some(bytes), Some(region)) => {
            let mut image =
                std::fs::read(out).with_context(|| format!("cannot read {}", out.display()))?;
            settings::place(&mut image, region.offset as usize, bytes);
            std::fs::write(out, &image)
                .with_context(|| format!("cannot write {}", out.display()))?;
            Some(region)
        }
        _ => None,
    };
    let size = std::fs::metadata(out)
        .with_context(|| format!("cannot read {}", out.display()))?
        .len();
    Ok(Made { size, region })
}

/// Runs the flasher's command `cmd` that saves an image: its failure says the flasher's message.
fn run_save(flasher: &Flasher, cmd: &Cmd) -> Result<()> {
    let command = cmd.display();
    let o = cmd
        .output()
        .with_context(|| format!("cannot run {}", flasher.program.display()))?;
    if !o.status.success() {
        return Err(Failure::new(
            Kind::FlashFailed,
            format!(
                "{} could not make the image (exit code {}): {}",
                flasher.name,
                crate::process::exit_code(o.status),
                last_line(&format!("{}\n{}", o.stdout_text(), o.stderr))
            ),
        )
        .hint(format!("the command was: {command}"))
        .into());
    }
    Ok(())
}

/// The family's command line that saves the app image alone (`flasher.app-image-args`).
fn app_image_args(board: &Board) -> Result<&[String]> {
    let family = board.family();
    family
        .flasher
        .app_image_args()
        .with_context(|| format!("the {} family has no `flasher.app-image-args`", family.id))
}

/// The app image of `elf` alone, as the flasher writes it at the app partition
/// (`flasher.app-image-args`, with the project's partition table `table` if any).
pub fn app_image(
    flasher: &Flasher,
    board: &Board,
    elf: &Path,
    table: Option<&Path>,
) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
    let out = dir.path().join("app.bin");
    let size = flash_size(board)?;
    let (elf_s, out_s) = (elf.display().to_string(), out.display().to_string());
    let fill = [
        ("elf", elf_s.as_str()),
        ("image", out_s.as_str()),
        ("flash_size", size.as_str()),
    ];
    let args = fill_args(board, app_image_args(board)?, table, &fill)?;
    run_save(flasher, &flasher.command(&args))?;
    std::fs::read(&out).with_context(|| format!("cannot read {}", out.display()))
}

/// [`app_image`]'s command as a user would type it: `espflash save-image --chip esp32c3
/// --flash-size 4mb fw.elf app.bin` (the ELF by its file name).
pub fn app_image_line(flasher: &Flasher, board: &Board, elf: &Path) -> Result<String> {
    let size = flash_size(board)?;
    let name = elf.file_name().unwrap_or_default().to_string_lossy();
    let fill = [
        ("elf", name.as_ref()),
        ("image", "app.bin"),
        ("flash_size", size.as_str()),
    ];
    let mut line = vec![flasher.name.clone()];
    line.extend(fill_args(board, app_image_args(board)?, None, &fill)?);
    Ok(crate::process::shell_line(&line))
}

/// Writes the image of `elf` to `out` as [`make`] does, all or nothing (written beside it, then
/// renamed), the flasher and its command reported first when a flasher makes it.
pub fn write(
    flasher: Option<&Flasher>,
    board: &Board,
    elf: &Path,
    layout: &Layout,
    settings: Option<&[u8]>,
    out: &Path,
    reporter: &dyn Reporter,
) -> Result<Made> {
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".nixflash-image-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", shown(dir)))?;
    if let Some(flasher) = flasher {
        let table = layout.partition_table.as_deref();
        let cmd = save_command(flasher, board, elf, table, tmp.path())?;
        reporter.report(Event::step("Flasher", flasher.to_string()));
        reporter.report(Event::step("Running", cmd.display()));
    }
    let made = make(flasher, board, elf, layout, settings, tmp.path())?;
    tmp.persist(out)
        .with_context(|| format!("cannot write {}", shown(out)))?;
    Ok(made)
}

/// A path as messages show it: a shell word.
fn shown(path: &Path) -> String {
    crate::process::shell_word(&path.to_string_lossy())
}

/// The line of espflash's output that says what went wrong (miette's `× ...`), else its last
/// line that says something.
fn last_line(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|l| crate::nix::log::strip_ansi(l).trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    // miette wraps its message onto lines that start with `│`.
    if let Some(i) = lines.iter().position(|l| l.starts_with('×')) {
        let mut message = vec![lines[i].trim_start_matches('×').trim()];
        message.extend(
            lines[i + 1..]
                .iter()
                .map_while(|l| l.strip_prefix('│'))
                .map(str::trim),
        );
        return message.join(" ");
    }
    lines.last().cloned().unwrap_or_else(|| "no message".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Database;
    use crate::version::Version;

    #[test]
    fn espflash_s_message_is_read_whole() {
        let out = "Chip type: esp32c3\nError: espflash::app_size\n\n  \u{d7} Supplied ELF image of 91248B is too big, and doesn't fit configured app\n  \u{2502} partition\n  help: Reduce the code size\n";
        assert_eq!(
            last_line(out),
            "Supplied ELF image of 91248B is too big, and doesn't fit configured app partition"
        );
        assert_eq!(last_line("a\nb\n\n"), "b");
    }

    #[test]
    fn command_lines_put_the_partition_table_before_the_firmware() {
        let db = Database::builtin().unwrap();
        let c3 = db.get("esp32c3").unwrap();
        let f = Flasher {
            name: "espflash".into(),
            program: PathBuf::from("/bin/espflash"),
            version: Version(4, 7, 0),
            source: crate::flash::Source::Path,
            path: "/bin".into(),
        };
        let (elf, table, out) = (
            Path::new("fw.elf"),
            Path::new("/p/partitions.csv"),
            Path::new("o.bin"),
        );
        let shown = |c: Cmd| c.display();
        assert_eq!(
            shown(save_command(&f, c3, elf, Some(table), out).unwrap()),
            "/bin/espflash save-image --chip esp32c3 --merge --skip-padding --flash-size 4mb \
             --partition-table /p/partitions.csv fw.elf o.bin"
        );
        assert_eq!(
            shown(save_command(&f, c3, elf, None, out).unwrap()),
            "/bin/espflash save-image --chip esp32c3 --merge --skip-padding --flash-size 4mb fw.elf \
             o.bin"
        );
        assert_eq!(
            shown(
                crate::flash::command(&f, c3, elf, Some("/dev/ttyUSB0"), Some(table), None)
                    .unwrap()
            ),
            "/bin/espflash flash --chip esp32c3 --port /dev/ttyUSB0 --baud 921600 \
             --partition-table /p/partitions.csv fw.elf"
        );
        assert_eq!(
            shown(write_command(&f, c3, out, "/dev/ttyUSB0").unwrap()),
            "/bin/espflash write-bin --chip esp32c3 --port /dev/ttyUSB0 --baud 921600 0x0 o.bin"
        );
        let c2 = db.get("esp32c2").unwrap();
        assert!(save_command(&f, c2, elf, None, out)
            .unwrap()
            .display()
            .contains(" --flash-size 2mb "));
        assert!(supported(c3));
        assert!(supported(db.get("uno").unwrap()) && supported(db.get("pico").unwrap()));
    }
}
