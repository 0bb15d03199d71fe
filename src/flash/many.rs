//! Many boards at once (`nixflash flash --port A --port B`, `--all`): one firmware, checked and
//! with its flasher found once, flashed through each board's serial port by the family's flasher,
//! a bounded number at a time. Each board is reported as it goes ([`Event::Board`]: its stage and,
//! when the flasher's output tells, how far), and one board failing does not stop the others: the
//! result is one [`BoardResult`] per board, in the order given.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::settings::Plan;
use super::Flasher;
use crate::board::{Board, Database};
use crate::error::{Failure, Kind};
use crate::process::Cmd;
use crate::report::{BoardStatus, Event, Reporter};
use crate::serial::PortInfo;
use crate::tool::Flake;

/// One board to flash: its port and, if the port is on USB, its serial number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub port: String,
    pub serial: Option<String>,
}

/// How one board went.
#[derive(Debug, Clone)]
pub struct BoardResult {
    pub target: Target,
    /// Why it was not flashed, if it was not.
    pub failure: Option<String>,
    /// From its start to its end (its wait for a free slot left out).
    pub time: Duration,
}

/// The boards to flash: the `--port`s given (`requested`, each once), or with `all` every port in
/// `listed` whose USB id is one of the board's. Refused, with nothing flashed: `--all` with
/// `--port`, a port given twice, `--all` with no matching port (what is connected is listed).
pub fn targets(
    requested: &[String],
    all: bool,
    listed: &[PortInfo],
    board: &Board,
    db: &Database,
) -> Result<Vec<Target>> {
    if all && !requested.is_empty() {
        return Err(Failure::new(
            Kind::Usage,
            "--all flashes every connected board that matches: it cannot be given with --port",
        )
        .hint("leave out --port to flash them all, or --all to flash the ports you name")
        .into());
    }
    if all {
        let matched = crate::serial::ports::matching_ports(listed, board);
        if matched.is_empty() {
            return Err(crate::serial::ports::no_port_error(listed, board, db));
        }
        return Ok(matched.into_iter().map(target_of).collect());
    }
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut out = Vec::new();
    for port in requested {
        let real = std::fs::canonicalize(port).unwrap_or_else(|_| PathBuf::from(port));
        if seen.contains(&real) {
            return Err(Failure::new(
                Kind::Usage,
                format!("the port {port} is given twice (--port): a board is flashed once"),
            )
            .hint("give each board's port once")
            .into());
        }
        seen.push(real.clone());
        let info = listed
            .iter()
            .find(|p| p.name == *port || std::fs::canonicalize(&p.name).is_ok_and(|r| r == real));
        out.push(Target {
            port: port.clone(),
            serial: info.and_then(|p| target_of(p).serial),
        });
    }
    Ok(out)
}

fn target_of(p: &PortInfo) -> Target {
    Target {
        port: p.name.clone(),
        serial: p.usb.as_ref().and_then(|u| u.serial_number.clone()),
    }
}

/// What every board's flashing shares: the board, the firmware, the flasher (found once) and its
/// configuration; and what each board has of its own: the image with its settings, if it gets
/// settings.
pub struct Job<'a> {
    board: &'a Board,
    root: &'a Path,
    elf: &'a Path,
    table: Option<PathBuf>,
    flasher: Flasher,
    config_dir: Option<tempfile::TempDir>,
    /// Each board's image (firmware and settings, from offset 0), in the order of the plans.
    images: Vec<Option<PathBuf>>,
    /// The folder that holds the images (they may hold secrets): removed with the job.
    _image_dir: Option<tempfile::TempDir>,
}

impl<'a> Job<'a> {
    /// Checks that `elf` is firmware for `board` and finds the board's flasher (reported), once
    /// for every board, then makes the image of each board that gets settings (`plans`, one per
    /// board of `targets`, from [`super::settings::plan_each`]). `root` is the project's folder
    /// (Ravedude.toml, partitions.csv).
    pub fn new(
        board: &'a Board,
        root: &'a Path,
        elf: &'a Path,
        plans: &[Plan],
        targets: &[Target],
        flake: &Flake,
        reporter: &dyn Reporter,
    ) -> Result<Job<'a>> {
        crate::firmware::check(board, elf)?;
        let flasher = super::find(board, flake, reporter)?;
        reporter.report(Event::step("Flasher", flasher.to_string()));
        let config_dir = board.family().flasher.config_dir(board, root)?;
        let table = plans
            .first()
            .and_then(|p| p.partition_table())
            .map(Path::to_path_buf);
        let mut job = Job {
            board,
            root,
            elf,
            table,
            flasher,
            config_dir,
            images: Vec::new(),
            _image_dir: None,
        };
        job.make_images(plans, targets, reporter)?;
        Ok(job)
    }

    /// The image of each board whose plan writes settings, made with the flasher (`espflash
    /// save-image`) into a temporary folder, each reported with the settings it holds.
    fn make_images(
        &mut self,
        plans: &[Plan],
        targets: &[Target],
        reporter: &dyn Reporter,
    ) -> Result<()> {
        if !plans.iter().any(Plan::writes_settings) {
            self.images = vec![None; targets.len()];
            return Ok(());
        }
        let dir = tempfile::Builder::new()
            .prefix("nixflash-images-")
            .tempdir()
            .context("cannot create a temporary folder for the boards' images")?;
        for (i, (plan, target)) in plans.iter().zip(targets).enumerate() {
            if !plan.writes_settings() {
                self.images.push(None);
                continue;
            }
            let file = dir.path().join(super::settings::upload_name(
                self.board,
                &format!("board-{}", i + 1),
            ));
            let (board, elf, port) = (self.board, self.elf, Some(target.port.as_str()));
            super::settings::make_image(&self.flasher, board, elf, plan, &file, port, reporter)?;
            self.images.push(Some(file));
        }
        self._image_dir = Some(dir);
        Ok(())
    }

    /// The flasher's name.
    pub fn flasher(&self) -> &Flasher {
        &self.flasher
    }

    /// The command that flashes the board at `target` (number `index` in the list, from 0):
    /// its own image when it gets settings, else the firmware.
    pub fn command(&self, index: usize, target: &Target) -> Result<Cmd> {
        let config = self.config_dir.as_ref().map(|d| d.path());
        if let Some(Some(image)) = self.images.get(index) {
            let (flasher, board, port) = (&self.flasher, self.board, &target.port);
            let cmd = super::settings::upload_command(flasher, board, image, port, config)?;
            return Ok(cmd.dir(self.root));
        }
        let cmd = super::command(
            &self.flasher,
            self.board,
            self.elf,
            Some(&target.port),
            self.table.as_deref(),
            config,
        )?;
        Ok(cmd.dir(self.root))
    }
}

/// Flashes every board of `targets` with `job`, at most `jobs` at a time, each reported as it
/// goes; returns how each went, in the order of `targets`.
pub fn flash_all(
    job: &Job,
    targets: &[Target],
    jobs: usize,
    reporter: &dyn Reporter,
) -> Vec<BoardResult> {
    let status = |i: usize, stage: &str, percent: Option<u8>, finished: Option<bool>| {
        reporter.report(Event::Board(BoardStatus {
            index: i,
            port: targets[i].port.clone(),
            serial: targets[i].serial.clone(),
            stage: stage.to_string(),
            percent,
            finished,
        }))
    };
    for i in 0..targets.len() {
        status(i, "waiting", None, None);
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<BoardResult>>> = Mutex::new(vec![None; targets.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, targets.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(target) = targets.get(i) else { break };
                let start = Instant::now();
                let failure = if crate::interrupt::interrupted() {
                    Err("not started: interrupted".to_string())
                } else {
                    flash_one(job, i, target, reporter, &|stage, pc| {
                        status(i, stage, pc, None)
                    })
                }
                .err();
                match &failure {
                    None => status(i, "flashed", None, Some(true)),
                    Some(why) => status(i, &format!("failed: {why}"), None, Some(false)),
                }
                let r = BoardResult {
                    target: target.clone(),
                    failure,
                    time: start.elapsed(),
                };
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.into_iter().flatten().collect()
}

/// Flashes one board: its port checked, then the flasher run with its output read for the stage
/// and percentage (`status`) and, on failure, for why.
fn flash_one(
    job: &Job,
    index: usize,
    target: &Target,
    reporter: &dyn Reporter,
    status: &(dyn Fn(&str, Option<u8>) + Sync),
) -> Result<(), String> {
    let port = target.port.as_str();
    status("checking the port", None);
    crate::serial::access::check(port).map_err(|e| one_line(&e))?;
    crate::serial::access::check_free(port).map_err(|e| one_line(&e.into()))?;
    let cmd = job.command(index, target).map_err(|e| one_line(&e))?;
    reporter.report(Event::step("Running", cmd.display()));
    status("starting", None);
    let mut running = cmd
        .spawn_piped_group()
        .map_err(|e| format!("cannot run {}: {e}", job.flasher.program.display()))?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let readers: Vec<_> = [
        running
            .stdout()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        running
            .stderr()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|r| read_into(r, tx.clone()))
    .collect();
    drop(tx);
    let mut watch = Watch::default();
    let mut heard = Instant::now();
    let mut stopped: Option<String> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(bytes) => {
                heard = Instant::now();
                watch.feed(&bytes, status);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if stopped.is_some() {
            continue;
        }
        stopped = if !Path::new(port).exists() {
            Some(format!("{port} went away while flashing (unplugged?)"))
        } else if heard.elapsed() > SILENCE {
            Some(format!(
                "{} said nothing for {} s: the board does not answer",
                job.flasher.name,
                SILENCE.as_secs()
            ))
        } else if crate::interrupt::interrupted() {
            Some("interrupted".into())
        } else {
            None
        };
        if stopped.is_some() {
            // The flasher and what it started (avrdude would wait for a lost port for ever).
            running.kill_group();
        }
    }
    for r in readers {
        let _ = r.join();
    }
    watch.feed(b"\n", status);
    let code = running
        .wait()
        .map_err(|e| format!("cannot wait for {}: {e}", job.flasher.name))?;
    if let Some(why) = stopped {
        return Err(why);
    }
    if code == 0 {
        return Ok(());
    }
    Err(match watch.why() {
        Some(why) => format!("{} failed (exit code {code}): {why}", job.flasher.name),
        None => format!("{} failed (exit code {code})", job.flasher.name),
    })
}

/// How long a flasher may say nothing before its board counts as not answering.
const SILENCE: Duration = Duration::from_secs(60);

/// A thread that sends what `r` gives to `tx` until it ends.
fn read_into(
    mut r: Box<dyn Read + Send>,
    tx: mpsc::Sender<Vec<u8>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok(n @ 1..) = r.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    })
}

/// An error as one line: its message and causes, joined.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// Reads a flasher's output as it comes for where it is. avrdude (run by ravedude) says
/// `writing flash`, then draws `Writing | ####…` (50 `#` for 100%), then `Reading | ####…` while
/// it verifies; espflash says `Connecting...` and `Flashing`, and a percentage on a terminal.
#[derive(Default)]
struct Watch {
    line: Vec<u8>,
    stage: String,
    percent: Option<u8>,
    /// The last lines, for why it failed.
    last: VecDeque<String>,
}

/// Words of a flasher's line (lower case) and the stage they start.
const STAGES: &[(&str, &str)] = &[
    ("programming", "connecting"),
    ("connecting", "connecting"),
    ("device initialized", "connected"),
    ("chip type", "connected"),
    ("erasing", "erasing"),
    ("writing flash", "writing"),
    ("avrdude: writing", "writing"),
    ("flashing has completed", "done"),
    ("flashing", "writing"),
    ("verifying", "verifying"),
    ("flash verified", "verified"),
];

impl Watch {
    fn feed(&mut self, bytes: &[u8], status: &(dyn Fn(&str, Option<u8>) + Sync)) {
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                self.end_line(status);
                continue;
            }
            self.line.push(b);
            if b == b'#'
                && (self.line.starts_with(b"Writing |") || self.line.starts_with(b"Reading |"))
            {
                let hashes = self.line.iter().filter(|&&c| c == b'#').count();
                self.set_percent((hashes * 2).min(100) as u8, status);
            }
        }
    }

    fn end_line(&mut self, status: &(dyn Fn(&str, Option<u8>) + Sync)) {
        let text = String::from_utf8_lossy(&self.line).trim().to_string();
        self.line.clear();
        if text.is_empty() {
            return;
        }
        let lower = text.to_lowercase();
        if let Some((_, stage)) = STAGES.iter().find(|(w, _)| lower.contains(w)) {
            if self.stage != *stage {
                self.stage = stage.to_string();
                self.percent = None;
                status(stage, None);
            }
        } else if let Some(p) = percent_in(&text) {
            self.set_percent(p, status);
        }
        if self.last.len() == 20 {
            self.last.pop_front();
        }
        self.last.push_back(text);
    }

    fn set_percent(&mut self, p: u8, status: &(dyn Fn(&str, Option<u8>) + Sync)) {
        if matches!(self.stage.as_str(), "writing" | "verifying") && self.percent != Some(p) {
            self.percent = Some(p);
            status(&self.stage, Some(p));
        }
    }

    /// Why the flasher failed, as its last lines say: the last line that names an error
    /// (avrdude's own first), else its last line.
    fn why(&self) -> Option<String> {
        const WORDS: &[&str] = &[
            "error",
            "not responding",
            "can't",
            "cannot",
            "failed",
            "timeout",
            "timed out",
        ];
        // avrdude's complaint that a pty is not a modem is no reason.
        let named = |l: &&String| {
            let lower = l.to_lowercase();
            WORDS.iter().any(|w| lower.contains(w)) && !lower.contains("inappropriate ioctl")
        };
        let lines = || self.last.iter().rev();
        lines()
            .filter(named)
            .find(|l| l.starts_with("avrdude"))
            .or_else(|| lines().find(named))
            .or_else(|| self.last.back())
            .cloned()
    }
}

/// A percentage in a line (`… 42% …`, `[00:01] 120/360 33%`), if there is one.
fn percent_in(line: &str) -> Option<u8> {
    let at = line.find('%')?;
    let digits: String = line[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse::<u8>().ok().filter(|p| *p <= 100)
}

#[cfg(test)]
#[path = "many_tests.rs"]
mod tests;
