//! nixflash: from an empty folder to embedded Rust firmware on a board, built reproducibly by Nix.
//!
//! One module per stage of the pipeline: the board database ([`board`]), rendering a project
//! ([`options`], [`render`] from the [`templates`] and the flake inputs' [`pins`]) and writing it
//! ([`project`]), reading it ([`manifest`], [`context`]), building it with Nix ([`nix`] with its
//! [`nix::std_lock`], [`flake_lock`], [`git`], [`diagnose`]), reading the firmware it makes
//! ([`firmware`]: its processor, chip, sizes and symbols), flashing ([`flash`]: ravedude,
//! espflash, an RP2 chip's boot drive with UF2 files), serial ports ([`serial`]) and the monitor
//! ([`monitor`]), running firmware without the board ([`sim`]), and [`doctor`]. Every other
//! program is started through [`process`]; the tools they run besides Nix come from PATH or the
//! project's flake ([`tool`]); errors say what to do through [`error`].
//! The command line is [`cmd`] (clap's parser in `cmd::cli`, one module per command, the only
//! code that prints); `main.rs` only calls it. Modules are `pub(crate)` unless the integration
//! tests read them, so that code nothing uses is a compiler warning.

pub mod board;
pub mod cmd;
pub(crate) mod context;
pub mod diagnose;
pub(crate) mod doctor;
pub(crate) mod error;
pub mod firmware;
pub(crate) mod flake_lock;
pub(crate) mod flash;
pub(crate) mod git;
pub(crate) mod interrupt;
pub mod manifest;
pub mod monitor;
pub mod nix;
pub mod options;
pub mod pins;
pub(crate) mod process;
pub(crate) mod project;
pub mod render;
pub mod report;
pub(crate) mod serial;
pub mod settings;
pub(crate) mod sim;
pub(crate) mod templates;
pub(crate) mod tool;
pub(crate) mod transaction;
pub(crate) mod version;
pub(crate) mod xdg;
