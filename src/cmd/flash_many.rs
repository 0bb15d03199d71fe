//! `nixflash flash --port A --port B`, `nixflash flash --all`: several boards at once
//! ([`crate::flash::many`]), then a table of how each went.

use std::path::Path;

use anyhow::Result;

use super::firmware::Firmware;
use super::flash::Args;
use super::{path, status, Terminal};
use crate::board::Board;
use crate::context::Context;
use crate::error::{Failure, Kind};
use crate::flash::many::{self, BoardResult};
use crate::flash::settings::{plan_each, Plan};
use crate::monitor::many::Watched;
use crate::settings::Device;

/// A board flashed through its boot drive or a debug probe: one at a time.
pub fn no_boot_drives(board: &Board) -> anyhow::Error {
    if board.family().flasher.through_probe() {
        return Failure::new(
            Kind::Unsupported,
            format!(
                "the {} is flashed through a debug probe: nixflash flashes one at a time",
                board.name
            ),
        )
        .hint("attach one probe and run `nixflash flash` once for each board")
        .into();
    }
    Failure::new(
        Kind::Unsupported,
        format!(
            "the {} is flashed through its boot drive: nixflash flashes one at a time",
            board.name
        ),
    )
    .hint("flash each with `nixflash flash --port <its boot drive's folder>`")
    .into()
}

/// Flashes the boards `--port`s or `--all` name with one build of the firmware, `--jobs` at a
/// time; 1 when any failed (the table and the error say which and why).
pub fn run(
    a: &Args,
    ctx: &Context,
    board: &Board,
    firmware: Firmware,
    root: &Path,
    root_dir: Option<&Path>,
) -> Result<u8> {
    let listed = crate::serial::list_ports()?;
    let targets = many::targets(&a.port, a.all, &listed, board, &ctx.db)?;
    // Each board's settings (`--set`, the environment, settings.toml and its section there),
    // refused before the build if one cannot be written.
    let devices: Vec<Device> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| Device {
            index: i + 1,
            port: t.port.clone(),
            serial: t.serial.clone(),
        })
        .collect();
    let (plans, warnings) = plan_each(board, root_dir, &a.set, &devices, &Terminal)?;
    for w in warnings {
        status("Warning", &w.to_string());
    }
    let (elf, _) = super::firmware::FirmwareArgs::get(firmware, ctx, &a.flags, board)?;
    let nix = a.flags.nix();
    let flake = crate::tool::Flake::of(ctx, nix.as_ref());
    let job = many::Job::new(board, root, &elf, &plans, &targets, &flake, &Terminal)?;
    let jobs = usize::from(a.jobs);
    status(
        "Flashing",
        &format!(
            "{} to {} boards ({}), {} at a time, with {}",
            path(&elf),
            targets.len(),
            board.name,
            jobs.min(targets.len()),
            job.flasher().name
        ),
    );
    let results = many::flash_all(&job, &targets, jobs, &Terminal);
    super::terminal::boards_done();
    crate::interrupt::check()?;
    eprint!("{}", summary(&results));
    let failed: Vec<&BoardResult> = results.iter().filter(|r| r.failure.is_some()).collect();
    if failed.is_empty() {
        eprintln!(
            "Flashed {} to {} boards ({}).",
            path(&elf),
            results.len(),
            board.name
        );
    }
    if a.monitor {
        watch(a, ctx, board, &elf, &results, &plans)?;
    }
    if failed.is_empty() {
        return Ok(0);
    }
    let which: Vec<String> = failed
        .iter()
        .map(|r| {
            format!(
                "{} ({})",
                r.target.port,
                r.failure.as_deref().unwrap_or_default()
            )
        })
        .collect();
    super::print_error(
        &Failure::new(
            Kind::FlashFailed,
            format!(
                "{} of {} boards failed: {}",
                failed.len(),
                results.len(),
                which.join("; ")
            ),
        )
        .hint(format!(
            "the others are flashed; check the failed boards' cables and that each is the {} ({}), \
             then flash them again with `--port`",
            board.name, board.id
        ))
        .into(),
    );
    Ok(1)
}

/// The table of how each board went: port, serial number, result, time.
fn summary(results: &[BoardResult]) -> String {
    let mut rows = vec![["port", "serial", "result", "time"].map(String::from)];
    for r in results {
        rows.push([
            r.target.port.clone(),
            r.target.serial.clone().unwrap_or_else(|| "-".into()),
            match &r.failure {
                None => "flashed".into(),
                Some(why) => format!("FAILED: {why}"),
            },
            format!("{:.1}s", r.time.as_secs_f64()),
        ]);
    }
    super::columns(&rows)
}

/// `flash --monitor` with several boards: one monitor of every board that was flashed, each line
/// prefixed with the board's `name` setting, else its port.
fn watch(
    a: &Args,
    ctx: &Context,
    board: &Board,
    elf: &Path,
    results: &[BoardResult],
    plans: &[Plan],
) -> Result<()> {
    if !board.monitor.usb_console {
        status(
            "Note",
            &format!(
                "the {}'s console is on its TX/RX pins, not its USB port: not opening the monitor",
                board.name
            ),
        );
        return Ok(());
    }
    let project = ctx.root.as_ref().map(|_| ctx.manifest()).transpose()?;
    let baud = project.and_then(|p| p.baud).unwrap_or(board.monitor.baud);
    let mut boards = Vec::new();
    for (r, plan) in results.iter().zip(plans) {
        if r.failure.is_some() {
            continue;
        }
        let port = r.target.port.clone();
        let reset = crate::serial::reset::steps_for(board, &port);
        let wait = std::time::Duration::from_secs(5);
        let mut opts = a.monitor_flags.options(port.clone(), baud, reset, wait)?;
        opts.decode = a.monitor_flags.decode(
            Some(elf.to_path_buf()),
            Some(board),
            project.map(|p| p.root.clone()),
        );
        let name = plan.settings().and_then(|(s, _)| s.get("name"));
        boards.push(Watched {
            label: name.map_or(port, str::to_string),
            opts,
        });
    }
    if boards.is_empty() {
        return Ok(());
    }
    crate::monitor::many::monitor_many(&boards, super::terminal::console())
}
