//! What nixflash says while it works, drawn from the library's [`Event`]s: one line per step on
//! stderr, cargo style (a right-aligned verb, then the message), so that it reads well between
//! the lines of the tools it runs. In colour on a terminal; plain when stderr is piped or
//! NO_COLOR is set. A long-running tool (nix) is one progress line on a terminal, drawn here;
//! piped, its own lines are printed instead.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::firmware::hash::Hashes;
use crate::report::{BoardStatus, Console, Event, Reporter};
use anstyle::{AnsiColor, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// How an error's label looks.
pub const ERROR: Style = AnsiColor::Red.on_default().bold();
/// How a warning's label looks.
pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
/// How a hint's label looks.
pub const HINT: Style = AnsiColor::Cyan.on_default().bold();
/// How a step's verb looks.
pub const STEP: Style = AnsiColor::Green.on_default().bold();

/// The progress line being drawn, if any (stderr is one, so there is one at most).
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// The command line's reporter: every event of the library on stderr, steps as cargo-style
/// lines, a tool's progress as one line on a terminal and its own lines when piped.
pub struct Terminal;

impl Reporter for Terminal {
    fn report(&self, event: Event) {
        let mut bar = BAR.lock().unwrap_or_else(|e| e.into_inner());
        // Lines go above the progress line, which is drawn again below them.
        let above = |f: &dyn Fn()| match bar.as_ref() {
            Some(b) => b.suspend(f),
            None => f(),
        };
        match event {
            Event::Step { verb, message } => above(&|| status(verb, &message)),
            Event::Warning(message) => above(&|| status("Warning", &message)),
            Event::Built {
                elf,
                link,
                size,
                hashes,
            } => above(&|| {
                let shown = match &link {
                    Some(l) => relative(&l.join("bin").join(elf.file_name().unwrap_or_default())),
                    None => elf.display().to_string(),
                };
                let link = match &link {
                    Some(l) => format!(" (link: {})", relative(l)),
                    None => String::new(),
                };
                status("Built", &format!("{}{link}", elf.display()));
                status("Size", &size.to_string());
                hash_lines(&shown, &hashes);
            }),
            Event::Output { line, detail } => match bar.as_ref() {
                Some(b) if !detail => b.println(line),
                Some(_) => {}
                None if detail && !self.shows_details() => {}
                None => {
                    let _ = writeln!(std::io::stderr().lock(), "{line}");
                }
            },
            Event::Progress { title, message } => {
                if bar.is_none() && std::io::stderr().is_terminal() {
                    *bar = Some(new_bar(&title));
                }
                if let Some(b) = bar.as_ref() {
                    b.set_prefix(title);
                    b.set_message(message);
                }
            }
            Event::ProgressEnd => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
            Event::Board(s) => board(s),
        }
    }

    /// A tool's own lines are printed where no progress line is drawn: when stderr is not a
    /// terminal.
    fn shows_details(&self) -> bool {
        !std::io::stderr().is_terminal()
    }
}

/// The lines of several boards flashed at once: on a terminal, a bar per board; piped, the stage
/// (and quarter of a percentage) each board last printed, so that a line is printed when it changes.
struct Boards {
    multi: Option<MultiProgress>,
    bars: Vec<Option<ProgressBar>>,
    last: Vec<(String, u8)>,
}

static BOARDS: Mutex<Option<Boards>> = Mutex::new(None);

/// Draws a board's line: its port and serial number, a bar of the stage's percentage and the
/// stage; piped, a `Board` line each time its stage (or quarter) changes.
fn board(s: BoardStatus) {
    let mut boards = BOARDS.lock().unwrap_or_else(|e| e.into_inner());
    let b = boards.get_or_insert_with(|| Boards {
        multi: std::io::stderr().is_terminal().then(MultiProgress::new),
        bars: Vec::new(),
        last: Vec::new(),
    });
    let label = match &s.serial {
        Some(n) => format!("{} ({n})", s.port),
        None => s.port.clone(),
    };
    let stage = match s.percent {
        Some(p) => format!("{} {p}%", s.stage),
        None => s.stage.clone(),
    };
    if let Some(multi) = &b.multi {
        b.bars.resize(b.bars.len().max(s.index + 1), None);
        let bar = b.bars[s.index].get_or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(100));
            bar.set_style(
                ProgressStyle::with_template("{prefix:.bold} [{bar:20}] {wide_msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.clone());
            bar
        });
        bar.set_position(s.percent.map_or(0, u64::from));
        bar.set_message(stage);
        match s.finished {
            Some(true) => bar.finish(),
            // Its bar stays where the board stopped.
            Some(false) => bar.abandon(),
            None => {}
        }
        return;
    }
    b.last
        .resize(b.last.len().max(s.index + 1), (String::new(), 0));
    let quarter = s.percent.unwrap_or(0) / 25;
    let last = &mut b.last[s.index];
    if last.0 != s.stage || quarter > last.1 {
        *last = (s.stage.clone(), quarter);
        status("Board", &format!("{label}: {stage}"));
    }
}

/// The boards flashed at once are done: their lines stay as they ended.
pub fn boards_done() {
    if let Some(b) = BOARDS.lock().unwrap_or_else(|e| e.into_inner()).take() {
        for bar in b.bars.iter().flatten() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
        if b.multi.is_some() {
            // indicatif leaves the cursor at the end of the last board's line.
            eprintln!();
        }
    }
}

/// A spinner with a title and what the tool is doing.
fn new_bar(title: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner:.green} {prefix:.bold} {wide_msg}")
            .expect("a valid template"),
    );
    bar.set_prefix(title.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Prints one progress line on stderr: `    Building blinky for the Arduino Uno with nix…`.
/// A `Warning` is yellow, every other verb green.
pub fn status(verb: &str, message: &str) {
    let style = if verb == "Warning" { WARN } else { STEP };
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{style}{verb:>12}{style:#} {message}");
}

/// A firmware's hashes, as `sha256sum` prints them (the ELF's line checks with `sha256sum -c`):
/// `SHA-256 <hex>  ./result/bin/fw.elf`, then the flash image's with what it is.
pub fn hash_lines(elf: &str, hashes: &Hashes) {
    status(
        "SHA-256",
        &crate::firmware::hash::sum_line(&hashes.elf, elf),
    );
    if let Some(i) = &hashes.image {
        status(
            "SHA-256",
            &format!("{}  flash image, {} bytes: {}", i.sha256, i.size, i.is),
        );
    }
}

/// The monitor's and the simulator's [`Console`]: nixflash's stdout and stderr.
pub fn console() -> Console {
    Console {
        out: Box::new(std::io::stdout()),
        err: Box::new(std::io::stderr()),
        out_is_terminal: std::io::stdout().is_terminal(),
        err_is_terminal: std::io::stderr().is_terminal(),
    }
}

/// `path` relative to the current folder when it lies below it (`./result`), else as is.
fn relative(path: &Path) -> String {
    let base = std::env::current_dir().unwrap_or_default();
    match path.strip_prefix(base) {
        Ok(rel) if !rel.as_os_str().is_empty() => format!("./{}", rel.display()),
        _ => path.display().to_string(),
    }
}
