//! `nixflash boards`: the board list, as a table or JSON, and one board in detail.

use crate::board::{Board, Entry, Source};
use crate::error::{Failure, Kind};
use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;

/// List the supported boards, or show one
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  nixflash boards               every board\n  \
        nixflash boards uno           the boards whose id, alias, name, chip or family has `uno`\n  \
        nixflash boards esp32c6       ... or `esp32c6`\n  nixflash boards --json\n  \
        nixflash boards show uno      everything about one board\n\n\
        Add or override boards with TOML files in $XDG_CONFIG_HOME/nixflash/boards/ or in a \
        project's boards/ folder (format: boards/README.md in nixflash's source; start from \
        `nixflash boards show uno --toml`)."
)]
pub struct Args {
    #[command(subcommand)]
    show: Option<Show>,
    /// Only the boards whose id, alias, name, chip or family contains this (any case)
    filter: Option<String>,
    /// Print JSON for tools instead of a table
    #[arg(long)]
    json: bool,
}

/// Whether the board's id, an alias, its name, chip or family contains `filter` (any case).
pub fn matches(b: &Board, filter: &str) -> bool {
    let f = filter.to_lowercase();
    std::iter::once(&b.id)
        .chain(&b.aliases)
        .chain([&b.name, &b.chip, &b.family_id])
        .any(|t| t.to_lowercase().contains(&f))
}

#[derive(Subcommand)]
enum Show {
    /// Everything nixflash knows about one board
    #[command(after_help = "Examples:\n  \
        nixflash boards show uno                 the Uno: chip, HAL, memory, flasher, USB ids\n  \
        nixflash boards show arduino-uno         the same board, by an alias\n  \
        nixflash boards show esp32c3 --json      for tools\n  \
        nixflash boards show uno --toml > my-uno.toml\n  \
        \x20                                        its board file, to start your own from\n\n\
        To make your own board, save the --toml output in $XDG_CONFIG_HOME/nixflash/boards/ \
        (default ~/.config/nixflash/boards/) or in a project's boards/ folder, and give it an \
        id of its own (the aliases it keeps stay the Uno's, with a warning); or write a short file with `inherit = \"uno\"`, an `id`, a `name` and \
        only what differs. A project made with `nixflash new --board <your board>` gets a copy \
        in its boards/ folder, so that it builds on other machines too.")]
    Show {
        /// Board id or alias (see `nixflash boards`)
        board: String,
        /// Print JSON for tools
        #[arg(long, conflicts_with = "toml")]
        json: bool,
        /// Print the board file itself (a starting point for your own boards)
        #[arg(long)]
        toml: bool,
    },
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    #[serde(flatten)]
    board: &'a Board,
    source: &'a Source,
    /// The options the board offers (`-o <name>=<choice>`), by name.
    options: std::collections::BTreeMap<&'a String, &'a crate::board::TemplateOption>,
}

impl<'a> JsonEntry<'a> {
    fn new(board: &'a Board, source: &'a Source) -> JsonEntry<'a> {
        JsonEntry {
            board,
            source,
            options: crate::options::offered(board).collect(),
        }
    }
}

pub fn run(args: Args) -> Result<u8> {
    let json = args.json || matches!(args.show, Some(Show::Show { json: true, .. }));
    super::answer_failure(json, list_or_show(args))
}

fn list_or_show(args: Args) -> Result<u8> {
    let ctx = super::context(match &args.show {
        Some(Show::Show { board, .. }) => super::Needs::Board(board),
        None => super::Needs::Nothing,
    })?;
    let db = &ctx.db;
    let filter = args.filter.as_deref().unwrap_or("");
    let entries = || db.entries().filter(|e| matches(&e.board, filter));
    if !filter.is_empty() && entries().next().is_none() {
        let mut f = Failure::new(
            Kind::BoardUnknown,
            format!("no board's id, alias, name, chip or family has `{filter}`"),
        );
        let close = db.closest(filter);
        if !close.is_empty() {
            f = f.hint(format!("did you mean {}?", close.join(", ")));
        }
        return Err(f.hint("`nixflash boards` lists every board").into());
    }
    match args.show {
        None if args.json => {
            let list: Vec<JsonEntry> = entries()
                .map(|e| JsonEntry::new(&e.board, &e.source))
                .collect();
            super::outln!("{}", serde_json::to_string_pretty(&list)?);
        }
        None => super::outp!("{}", table(entries())),
        Some(Show::Show { board, json, toml }) => {
            let b = db.get(&board)?;
            let source = db.source_of(&b.id).cloned().unwrap_or(Source::Builtin);
            if json {
                let e = JsonEntry::new(b, &source);
                super::outln!("{}", serde_json::to_string_pretty(&e)?);
            } else if toml {
                match &source {
                    Source::Builtin => super::outp!(
                        "{}",
                        crate::board::exported(
                            b,
                            crate::board::builtin_source(&b.id).unwrap_or_default()
                        )
                    ),
                    Source::User(p) | Source::Project(p) => {
                        let text = std::fs::read_to_string(p)?;
                        super::outp!("{}", crate::board::exported(b, &text))
                    }
                }
            } else {
                super::outp!("{}", details(b, &source));
            }
        }
    }
    Ok(0)
}

/// The board list as an aligned table.
pub fn table<'a>(entries: impl Iterator<Item = &'a Entry>) -> String {
    let mut rows = vec![[
        "BOARD".to_string(),
        "NAME".to_string(),
        "CHIP".to_string(),
        "FAMILY".to_string(),
        "FLASHER".to_string(),
        "ALIASES".to_string(),
    ]];
    let mut custom = Vec::new();
    for e in entries {
        let b = &e.board;
        let mut id = b.id.clone();
        if e.source != Source::Builtin {
            id.push('*');
            custom.push(format!("{} ({})", b.id, e.source));
        }
        rows.push([
            id,
            b.name.clone(),
            b.chip.clone(),
            b.family_id.clone(),
            b.family().flasher.short_name().to_string(),
            b.aliases.join(", "),
        ]);
    }
    let mut out = super::columns(&rows);
    for c in custom {
        out.push_str(&format!("* from {c}\n"));
    }
    out.push_str("\nStart a project: nixflash new <folder> --board <BOARD>; details: nixflash boards show <BOARD>\n");
    out
}

/// What the flasher is told the board is, after the tool on the `flasher` line: its board or
/// chip, or the board it flashes like.
fn flasher_target(b: &Board) -> String {
    match b.flasher_board().and_then(|f| f.like) {
        Some(like) => format!(
            " (as its `{like}`: it has no board `{}`)",
            b.flash.board.as_deref().unwrap_or_default()
        ),
        None => b
            .flash
            .board
            .as_deref()
            .or(b.flash.chip.as_deref())
            .map(|n| format!(" ({n})"))
            .unwrap_or_default(),
    }
}

fn details(b: &Board, source: &Source) -> String {
    let usb: Vec<String> = b.usb.ids.iter().map(|u| u.to_string()).collect();
    let mut s = format!(
        "{name} ({id})\n\
         \x20 aliases       {aliases}\n\
         \x20 chip          {chip} ({family})\n\
         \x20 rust target   {target}{cpu}\n\
         \x20 toolchain     {toolchain}{std}\n\
         \x20 HAL           {hal} (feature `{feature}`), LED on {led}\n\
         \x20 memory        {flash} B flash, {ram} B RAM\n\
         \x20 flasher       {tool}{target_name}{fbaud}\n\
         \x20 monitor       {monitor}\n\
         \x20 USB ids       {usb}\n\
         \x20 docs          {docs}\n\
         \x20 defined       {source}\n",
        name = b.name,
        id = b.id,
        aliases = if b.aliases.is_empty() {
            "-".to_string()
        } else {
            b.aliases.join(", ")
        },
        chip = b.chip,
        family = b.family_id,
        target = b.rust.target,
        cpu = b
            .rust
            .target_cpu
            .as_deref()
            .map(|c| format!(", target-cpu {c}"))
            .unwrap_or_default(),
        toolchain = b.rust.toolchain,
        std = if b.rust.build_std {
            ", core built from source (-Z build-std)"
        } else {
            ""
        },
        hal = b.hal.krate,
        feature = b.hal.feature,
        led = match &b.hal.led_sink {
            Some(sink) => format!("{} (with {sink} held low)", b.hal.led),
            None => b.hal.led.clone(),
        },
        flash = b.memory.flash,
        ram = b.memory.ram,
        tool = b.family().flasher.describe(b),
        target_name = flasher_target(b),
        fbaud = b
            .flash
            .baud
            .map(|n| format!(", {n} baud"))
            .unwrap_or_default(),
        monitor = match (&b.monitor.console, b.family().flasher.through_probe()) {
            (Some(console), true) => console.clone(),
            _ => format!("{} baud", b.monitor.baud),
        },
        usb = usb.join(" "),
        docs = b.docs,
    );
    if let (Some(sim), Some(spec)) = (b.simulator(), &b.sim) {
        let machine = spec
            .machine
            .as_ref()
            .map(|m| format!("machine `{m}`: "))
            .unwrap_or_default();
        let line = format!(
            "\x20 simulator     {} ({machine}{} at {} Hz, LED on {}, console {})\n",
            sim.tool.as_str(),
            spec.mcu,
            b.clock.unwrap_or_default(),
            spec.led,
            spec.uart
        );
        // After the monitor's line.
        let at = s.find("  USB ids").unwrap_or(s.len());
        s.insert_str(at, &line);
    }
    let offered: Vec<_> = crate::options::offered(b).collect();
    if offered.is_empty() {
        s.push_str("  options       none (the family's templates offer no choices)\n");
    } else {
        s.push_str("  options       -o <name>=<choice> on `nixflash new` and `init`:\n");
    }
    for (name, o) in offered {
        s.push_str(&format!("    {name:<12}{}\n", crate::options::describe(o)));
    }
    if let Some(n) = &b.notes {
        s.push_str(&format!("\n{}\n", n.trim()));
    }
    s.push_str(&format!(
        "\nStart a project: nixflash new <folder> --board {}\n",
        b.id
    ));
    s
}
