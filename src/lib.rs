//! nixflash: from an empty folder to embedded Rust firmware on a board, built reproducibly by Nix.
//!
//! One module per stage of the pipeline; `main.rs` is only the command line.

pub mod board;
pub mod diagnose;
pub mod flake_lock;
pub mod flash;
pub mod git;
pub mod interrupt;
pub mod manifest;
pub mod nix;
pub mod project;
pub mod render;
pub mod serial;
pub mod size;
