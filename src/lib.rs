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
//! `main.rs` is only the command line.

pub mod board;
pub mod context;
pub mod diagnose;
pub mod doctor;
pub mod error;
pub mod firmware;
pub mod flake_lock;
pub mod flash;
pub mod git;
pub mod interrupt;
pub mod manifest;
pub mod monitor;
pub mod nix;
pub mod options;
pub mod pins;
pub mod process;
pub mod project;
pub mod render;
pub mod report;
pub mod serial;
pub mod settings;
pub mod sim;
pub mod templates;
pub mod tool;
pub mod transaction;
pub mod version;
