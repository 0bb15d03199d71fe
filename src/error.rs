//! Errors that say what to do next.
//!
//! Code fails with `anyhow::Error` as usual, adding context as it goes up. Where a failure knows
//! what the user can do about it, it is a [`Failure`]: its [`Kind`] (what a script acts on), the
//! message, what is known about the cause (diagnoses) and hints kept apart from it (several
//! lines each if need be). A [`Report`] gathers the messages of the whole chain, the kind and the
//! diagnoses and hints of every [`Failure`] in it, for the terminal or for `--json`.
//!
//! This module depends on nothing else in the crate: a stage that knows more about a failure
//! (a `nix build`'s log, say) puts what it knows into the [`Failure`] as data.

use std::fmt;

use serde::Serialize;

/// Defines [`Kind`] and [`Kind::ALL`] from one list, so that no kind can be left out of `ALL`.
macro_rules! kinds {
    ($($(#[$doc:meta])* $kind:ident,)*) => {
        /// What kind of failure it is: one per failure a user or a script acts on differently.
        /// `--json` output says it as `"kind"` (kebab-case, e.g. `"port-busy"`); README.md lists
        /// them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Kind {
            $($(#[$doc])* $kind,)*
        }

        impl Kind {
            /// Every kind, in the order README.md lists them.
            pub const ALL: &'static [Kind] = &[$(Kind::$kind),*];
        }
    };
}

kinds! {
    /// A flag or argument that cannot work as given (a zero `--baud`, an answer not offered).
    Usage,
    /// No board has that id or alias (or matches the filter).
    BoardUnknown,
    /// Which board is meant cannot be told: pass `--board` (or set it in Cargo.toml).
    BoardNeeded,
    /// A board file (the project's `boards/` or nixflash's) cannot be used.
    BoardFile,
    /// The board Cargo.toml names is not the one the project's files were written for.
    BoardMismatch,
    /// nixflash has no dependency lock for the board and its options.
    LockDataMissing,
    /// No Cargo package here (nor above), or at a workspace root rather than a package.
    NotAProject,
    /// A file of the project (Cargo.toml, Ravedude.toml) is not what nixflash can read.
    ProjectFile,
    /// A package name cargo would refuse.
    NameInvalid,
    /// Files would be overwritten or a family switched: `--force` does it anyway.
    NeedsForce,
    /// No flake.nix in the project or above it.
    NoFlake,
    /// The project's flake.lock cannot be read by Nix.
    FlakeLock,
    /// The flake has no input of that name.
    InputUnknown,
    /// The project's flake does not give what nixflash needs from it.
    Flake,
    /// `nix flake update` failed (it needs the network).
    UpdateFailed,
    /// The `nix build` of the firmware failed.
    BuildFailed,
    /// `verify`: the rebuild, or the hash or firmware given with `--against`, is not what was
    /// built.
    NotIdentical,
    /// `nix` is not installed.
    NixMissing,
    /// This Nix is too old, or not set up the way a build needs.
    NixTooOld,
    /// `git` is not installed.
    GitMissing,
    /// No usable tool that nixflash runs (flasher, simulator): none on PATH, or too old or
    /// lacking what it needs, and none from the project's flake.
    ToolMissing,
    /// The firmware to flash or simulate is not there (no `./result`, no such `--elf`).
    FirmwareMissing,
    /// The file is not firmware for this board (not an ELF, another architecture or chip).
    NotFirmware,
    /// The board has no such feature in nixflash yet (a simulator, an image of its family).
    Unsupported,
    /// The serial port (or boot drive) is not there.
    PortNotFound,
    /// Several serial ports (or boot drives) may be the board's: pass `--port`.
    PortAmbiguous,
    /// Another program has the serial port open.
    PortBusy,
    /// The user may not open the serial port.
    PortPermission,
    /// The path is not a serial port.
    PortNotSerial,
    /// The serial port went away while in use.
    PortLost,
    /// The flasher failed.
    FlashFailed,
    /// An option (`-o`, the template choices) the board does not have or that conflicts.
    Option,
    /// A setting (`--set`, settings file, `NIXFLASH_SET_*`) that cannot be written.
    Setting,
    /// The partition table cannot hold the settings.
    PartitionTable,
    /// The simulator failed or stopped unexpectedly.
    SimFailed,
    /// The simulated firmware crashed.
    SimCrashed,
    /// `sim --expect`: the firmware never sent what was expected.
    ExpectUnmet,
    /// Ctrl-C or a termination signal.
    Interrupted,
    /// Anything else: an error nixflash has no advice for.
    Other,
}

impl Kind {
    /// The kind as `--json` says it, e.g. `port-busy`.
    pub fn name(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(s)) => s,
            _ => unreachable!("a kind serializes as a string"),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A failure and what to do about it. It is the error itself, never an anyhow context (which
/// [`Report`] could not see through): a cause goes in [`Failure::because`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    /// What is known about the cause, one line each.
    pub diagnoses: Vec<String>,
    /// What to do next, most useful first.
    pub hints: Vec<String>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            diagnoses: Vec::new(),
            hints: Vec::new(),
            source: None,
        }
    }

    /// The same failure with one more hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hints.push(hint.into());
        self
    }

    /// The same failure with one more diagnosis: what is known about its cause.
    pub fn diagnosis(mut self, diagnosis: impl Into<String>) -> Failure {
        self.diagnoses.push(diagnosis.into());
        self
    }

    /// The same failure, caused by `e` (shown as `caused by:` under it).
    pub fn because(
        mut self,
        e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Failure {
        self.source = Some(e.into());
        self
    }
}

/// An error, ready to be shown: its kind, every message of the chain, outermost first, and
/// everything it knows about what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The kind of the outermost [`Failure`] that has one; [`Kind::Other`] if none has.
    pub kind: Kind,
    /// The outermost message.
    pub error: String,
    /// The messages under it, each caused by the one after it.
    pub causes: Vec<String>,
    pub diagnoses: Vec<String>,
    pub hints: Vec<String>,
}

impl Report {
    pub fn of(e: &anyhow::Error) -> Report {
        let mut kind = Kind::Other;
        let mut messages = Vec::new();
        let mut diagnoses = Vec::new();
        let mut hints = Vec::new();
        for cause in e.chain() {
            messages.push(cause.to_string());
            if let Some(f) = cause.downcast_ref::<Failure>() {
                if kind == Kind::Other {
                    kind = f.kind;
                }
                diagnoses.extend(f.diagnoses.iter().cloned());
                hints.extend(f.hints.iter().cloned());
            }
        }
        let error = messages.remove(0);
        Report {
            kind,
            error,
            causes: messages,
            diagnoses,
            hints,
        }
    }

    /// The message and its causes on one line, `error: cause: cause`.
    pub fn one_line(&self) -> String {
        let mut line = self.error.clone();
        for c in &self.causes {
            line.push_str(": ");
            line.push_str(c);
        }
        line
    }

    /// The report as one [`Failure`] (its messages on one line), to fail with again later.
    pub fn to_failure(&self) -> Failure {
        Failure {
            kind: self.kind,
            message: self.one_line(),
            diagnoses: self.diagnoses.clone(),
            hints: self.hints.clone(),
            source: None,
        }
    }
}

impl fmt::Display for Report {
    /// `error: ...` (its lines as they are), `  caused by: ...`, `diagnosis: ...`, then the hints,
    /// each `hint: ...` with its further lines indented under its first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let block = |f: &mut fmt::Formatter<'_>, label: &str, indent: &str, text: &str| {
            let mut lines = text.lines();
            writeln!(f, "{label}{}", lines.next().unwrap_or(""))?;
            for l in lines {
                if l.is_empty() {
                    writeln!(f)?;
                } else {
                    writeln!(f, "{indent}{l}")?;
                }
            }
            Ok(())
        };
        block(f, "error: ", "", &self.error)?;
        for c in &self.causes {
            block(f, "  caused by: ", "  ", c)?;
        }
        for d in &self.diagnoses {
            block(f, "diagnosis: ", "", d)?;
        }
        for h in &self.hints {
            block(f, "hint: ", "      ", h)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn hints_stay_whole_and_come_last() {
        let inner: anyhow::Result<()> = Err(Failure::new(Kind::NoFlake, "no flake.nix in /p")
            .hint("add one with\n  nixflash init --board uno")
            .hint("or create a project: nixflash new blinky --board uno")
            .into());
        let e = inner.context("cannot build").unwrap_err();
        let r = Report::of(&e);
        assert_eq!(r.kind, Kind::NoFlake);
        assert_eq!(r.error, "cannot build");
        assert_eq!(r.causes, vec!["no flake.nix in /p"]);
        assert_eq!(
            r.hints,
            vec![
                "add one with\n  nixflash init --board uno",
                "or create a project: nixflash new blinky --board uno"
            ]
        );
        assert_eq!(
            r.to_string(),
            "error: cannot build\n  caused by: no flake.nix in /p\nhint: add one with\n        \
             nixflash init --board uno\nhint: or create a project: nixflash new blinky --board \
             uno\n"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["kind"], "no-flake");
        assert_eq!(
            json["hints"][0],
            "add one with\n  nixflash init --board uno"
        );
    }

    #[test]
    fn a_cause_under_a_failure_keeps_the_failure_s_hints() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e: anyhow::Error = Failure::new(Kind::BoardFile, "cannot read board file b.toml")
            .hint("check the path")
            .because(io)
            .into();
        let r = Report::of(&e.context("loading boards"));
        assert_eq!(r.error, "loading boards");
        assert_eq!(r.causes, ["cannot read board file b.toml", "no such file"]);
        assert_eq!(r.hints, ["check the path"]);
        assert_eq!(r.kind, Kind::BoardFile);
    }

    #[test]
    fn the_outermost_kind_counts_and_an_other_failure_lets_the_inner_one_through() {
        let inner = Failure::new(Kind::PortBusy, "port busy").hint("close it");
        let outer = Failure::new(Kind::FlashFailed, "cannot flash").because(inner);
        assert_eq!(Report::of(&outer.into()).kind, Kind::FlashFailed);
        let inner = Failure::new(Kind::PortBusy, "port busy").diagnosis("screen has it");
        let outer = Failure::new(Kind::Other, "cannot flash").because(inner);
        let r = Report::of(&outer.into());
        assert_eq!(r.kind, Kind::PortBusy);
        assert_eq!(r.diagnoses, ["screen has it"]);
        let again = Report::of(&r.to_failure().into());
        assert_eq!(again.kind, Kind::PortBusy);
        assert_eq!(again.error, "cannot flash: port busy");
        assert_eq!(again.diagnoses, ["screen has it"]);
    }

    #[test]
    fn the_readme_describes_every_kind_in_order() {
        let readme = include_str!("../README.md");
        let section = readme
            .split_once("\n### Errors\n")
            .and_then(|(_, rest)| rest.split("\n#").next())
            .expect("README.md has a section `### Errors`");
        let listed: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split_once("` |").map(|(k, _)| k))
            .collect();
        let kinds: Vec<String> = Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(listed, kinds, "README.md's table of error kinds");
    }

    #[test]
    fn a_plain_error_has_no_hints() {
        let e = anyhow::anyhow!("plain");
        let r = Report::of(&e);
        assert_eq!(r.to_string(), "error: plain\n");
        assert_eq!(r.kind, Kind::Other);
        assert!(r.hints.is_empty() && r.causes.is_empty());
    }
}
