//! What a nix command shows while it runs. nixflash asks Nix for its log as JSON
//! (`--log-format internal-json`) and reports it to the [`Reporter`] it is given two ways at
//! once, for the reporter to show one of them:
//!
//! - [`Event::Progress`]: how many derivations are built of how many, what is being built or
//!   downloaded, and the last line a builder printed (the command line draws it as one progress
//!   line on a terminal);
//! - [`Event::Output`]: plain lines, as `nix build -L` prints them: what is built or downloaded,
//!   every builder line prefixed with its name (`blinky> Compiling ...`), Nix's messages;
//!   warnings and errors are not `detail`s, so they show above a progress line too.
//!
//! Either way the plain lines are kept, as the log that failure reports and diagnoses read.

use std::collections::HashMap;

use serde_json::Value;

use crate::report::{Event, Reporter};

/// Activity types of Nix's JSON log (src/libutil/logging.hh).
const COPY_PATH: u64 = 100;
const FILE_TRANSFER: u64 = 101;
const BUILDS: u64 = 104;
const BUILD: u64 = 105;
const SUBSTITUTE: u64 = 108;
const FETCH_TREE: u64 = 112;
/// Result types.
const BUILD_LOG_LINE: u64 = 101;
const SET_PHASE: u64 = 104;
const PROGRESS: u64 = 105;

/// How many lines of the plain log are kept: the start and the end.
const HEAD: usize = 500;
const TAIL: usize = 5000;

/// Renders one nix command's JSON log.
pub struct NixLog<'r> {
    reporter: &'r dyn Reporter,
    title: String,
    /// What each running activity is (for the prefix of its log lines).
    names: HashMap<u64, String>,
    head: Vec<String>,
    tail: std::collections::VecDeque<String>,
    /// Derivations built so far, and how many there are.
    done: u64,
    expected: u64,
    doing: String,
    last_line: String,
    /// The URLs whose download Nix retries, each said once.
    retried: Vec<String>,
}

impl<'r> NixLog<'r> {
    /// A log reported to `reporter`; `title` says what the command does ("building blinky").
    pub fn new(title: &str, reporter: &'r dyn Reporter) -> NixLog<'r> {
        reporter.report(Event::Progress {
            title: title.to_string(),
            message: String::new(),
        });
        NixLog {
            reporter,
            title: title.to_string(),
            names: HashMap::new(),
            head: Vec::new(),
            tail: Default::default(),
            done: 0,
            expected: 0,
            doing: String::new(),
            last_line: String::new(),
            retried: Vec::new(),
        }
    }

    /// Takes one line of nix's stderr.
    pub fn line(&mut self, raw: &str) {
        let Some(json) = raw.strip_prefix("@nix ") else {
            // Not JSON (a nix too old to know the format, or a builder writing to stderr):
            // shown as it is.
            self.plain(raw, true);
            return;
        };
        let Ok(v) = serde_json::from_str::<Value>(json) else {
            self.plain(raw, true);
            return;
        };
        let num = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
        match text("action") {
            "msg" => {
                let level = num("level");
                let msg = strip_ansi(text("msg"));
                if level == 0 && msg.starts_with("error:") {
                    // The command's error: kept for the failure, which reports it (once).
                    for l in msg.lines() {
                        self.record(l);
                    }
                } else if let Some(url) = retried_download(&msg) {
                    // Nix retries a failed download a few times, each with the same error:
                    // one line per URL, and the final error reports why.
                    if !self.retried.contains(&url) {
                        self.doing = format!("retrying the download of {url}");
                        self.plain(&format!("warning: {}…", self.doing), false);
                        self.retried.push(url);
                    }
                } else if level <= 3 {
                    // Warnings always show; notices (what will be built) when plain.
                    for l in msg.lines() {
                        self.plain(l, level <= 1);
                    }
                }
            }
            "start" => {
                let id = num("id");
                let kind = num("type");
                let what = strip_ansi(text("text"));
                match kind {
                    BUILDS => {
                        self.names.insert(id, "@builds".into());
                    }
                    BUILD => {
                        let drv = v["fields"][0].as_str().unwrap_or("");
                        self.names.insert(id, pname(drv));
                        self.doing = format!("building {}", pname(drv));
                        self.plain(&format!("{what}..."), false);
                    }
                    FILE_TRANSFER | SUBSTITUTE | COPY_PATH | FETCH_TREE
                        if num("level") <= 3 && !what.is_empty() =>
                    {
                        self.doing = what.clone();
                        self.plain(&what, false);
                    }
                    _ => {}
                }
                self.show();
            }
            "result" => {
                let id = num("id");
                let fields = &v["fields"];
                match num("type") {
                    BUILD_LOG_LINE => {
                        let line = strip_ansi(fields[0].as_str().unwrap_or(""));
                        let name = self.names.get(&id).cloned().unwrap_or_default();
                        self.last_line = line.trim().to_string();
                        self.plain(&format!("{name}> {line}"), false);
                    }
                    SET_PHASE => {
                        let name = self.names.get(&id).cloned().unwrap_or_default();
                        self.last_line = fields[0].as_str().unwrap_or("").to_string();
                        self.doing = format!("building {name}");
                    }
                    PROGRESS if self.names.get(&id).map(String::as_str) == Some("@builds") => {
                        self.done = fields[0].as_u64().unwrap_or(0);
                        self.expected = fields[1].as_u64().unwrap_or(0);
                    }
                    _ => {}
                }
                self.show();
            }
            "stop" => {
                self.names.remove(&num("id"));
            }
            _ => {}
        }
    }

    /// Records a plain line, and reports it: a detail unless `loud` (warnings, errors).
    fn plain(&mut self, line: &str, loud: bool) {
        let line = line.trim_end();
        self.reporter.report(Event::Output {
            line: line.to_string(),
            detail: !loud,
        });
        self.record(line);
    }

    /// Keeps a line of the plain log without showing it.
    fn record(&mut self, line: &str) {
        let line = line.trim_end().to_string();
        if self.head.len() < HEAD {
            self.head.push(line);
        } else {
            self.tail.push_back(line);
            if self.tail.len() > TAIL {
                self.tail.pop_front();
            }
        }
    }

    fn show(&self) {
        let mut msg = String::new();
        if self.expected > 0 {
            msg.push_str(&format!("[{}/{}] ", self.done, self.expected));
        }
        msg.push_str(&self.doing);
        if !self.last_line.is_empty() {
            msg.push_str(": ");
            msg.push_str(&self.last_line);
        }
        self.reporter.report(Event::Progress {
            title: self.title.clone(),
            message: msg,
        });
    }

    /// Ends the progress line, and gives the plain log: the first and last lines.
    pub fn finish(mut self) -> String {
        self.reporter.report(Event::ProgressEnd);
        let mut lines = std::mem::take(&mut self.head);
        lines.extend(std::mem::take(&mut self.tail));
        lines.join("\n")
    }
}

/// The name Nix prefixes a derivation's log lines with (`nix build -L`): the derivation's name
/// without its version, which starts at the first `-` followed by a digit.
pub fn pname(drv: &str) -> String {
    let file = drv.rsplit('/').next().unwrap_or(drv);
    let name = file.trim_end_matches(".drv");
    // Store paths start with a 32-character hash and a dash.
    let name = match name.split_once('-') {
        Some((hash, rest)) if hash.len() == 32 => rest,
        _ => name,
    };
    let bytes = name.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            return name[..i].to_string();
        }
    }
    name.to_string()
}

/// The URL of a download Nix retries: `warning: error: unable to download '<url>': ...;
/// retrying in 297 ms`.
fn retried_download(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("warning: error: unable to download '")?;
    let (url, reason) = rest.split_once('\'')?;
    reason.contains("; retrying in ").then(|| url.to_string())
}

/// `text` without ANSI escape sequences (Nix colours its messages).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_those_of_nix_build_l() {
        assert_eq!(
            pname("/nix/store/6sgnpipigvl4m5z6nj9bg0ib8bg0mlgw-fixture-0.1.0.drv"),
            "fixture"
        );
        assert_eq!(
            pname("/nix/store/6sgnpipigvl4m5z6nj9bg0ib8bg0mlgw-esp32c3-t58d3ac80-deps-0.1.0.drv"),
            "esp32c3-t58d3ac80-deps"
        );
        assert_eq!(
            pname("/nix/store/6sgnpipigvl4m5z6nj9bg0ib8bg0mlgw-rust-src-host.drv"),
            "rust-src-host"
        );
        assert_eq!(
            pname("/nix/store/6sgnpipigvl4m5z6nj9bg0ib8bg0mlgw-uno-0.1.0.drv"),
            "uno"
        );
    }

    #[test]
    fn json_becomes_the_lines_of_nix_build_l() {
        let rec = crate::report::Recorder::default();
        let mut log = NixLog::new("building", &rec);
        for l in [
            r#"@nix {"action":"msg","level":1,"msg":"\u001b[35;1mwarning:\u001b[0m Git tree '/p' is dirty"}"#,
            r#"@nix {"action":"msg","level":4,"msg":"evaluating file 'x'"}"#,
            r#"@nix {"action":"msg","level":3,"msg":"this derivation will be built:"}"#,
            r#"@nix {"action":"msg","level":3,"msg":"  /nix/store/6sgnpipigvl4m5z6nj9bg0ib8bg0mlgw-fixture-0.1.0.drv"}"#,
            r#"@nix {"action":"start","fields":["/nix/store/6sgnpipigvl4m5z6nj9bg0ib8bg0mlgw-fixture-0.1.0.drv","",1,1],"id":7,"level":3,"parent":0,"text":"building '/nix/store/6sgnpipigvl4m5z6nj9bg0ib8bg0mlgw-fixture-0.1.0.drv'","type":105}"#,
            r#"@nix {"action":"result","fields":["installing the firmware"],"id":7,"type":101}"#,
            r#"@nix {"action":"stop","id":7}"#,
            "a line that is not JSON",
            r#"@nix {"action":"msg","level":1,"msg":"\u001b[35;1mwarning:\u001b[0m error: unable to download 'https://x.invalid/a': Could not resolve host: x.invalid; retrying in 297 ms"}"#,
            r#"@nix {"action":"msg","level":1,"msg":"\u001b[35;1mwarning:\u001b[0m error: unable to download 'https://x.invalid/a': Could not resolve host: x.invalid; retrying in 652 ms"}"#,
            r#"@nix {"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m\n       … while fetching\n\n       \u001b[31;1merror:\u001b[0m unable to download 'https://x.invalid/a'"}"#,
        ] {
            log.line(l);
        }
        assert_eq!(
            log.finish(),
            "warning: Git tree '/p' is dirty\n\
             this derivation will be built:\n  \
             /nix/store/6sgnpipigvl4m5z6nj9bg0ib8bg0mlgw-fixture-0.1.0.drv\n\
             building '/nix/store/6sgnpipigvl4m5z6nj9bg0ib8bg0mlgw-fixture-0.1.0.drv'...\n\
             fixture> installing the firmware\n\
             a line that is not JSON\n\
             warning: retrying the download of https://x.invalid/a…\n\
             error:\n       … while fetching\n\n       error: unable to download 'https://x.invalid/a'"
        );
        // Warnings show above a progress line; what is built and builders' lines are details
        // (a line that is not JSON is shown as it is); the error is left to the failure.
        let loud: Vec<String> = rec
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Output {
                    line,
                    detail: false,
                } => Some(line),
                _ => None,
            })
            .collect();
        assert_eq!(
            loud,
            ["warning: Git tree '/p' is dirty", "a line that is not JSON"]
        );
        let events = rec.events();
        assert_eq!(
            events.first(),
            Some(&Event::Progress {
                title: "building".into(),
                message: String::new()
            })
        );
        assert_eq!(events.last(), Some(&Event::ProgressEnd));
        assert!(events.contains(&Event::Progress {
            title: "building".into(),
            message: "building fixture: installing the firmware".into()
        }));
    }
}
