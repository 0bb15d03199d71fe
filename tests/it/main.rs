//! nixflash's integration tests, one binary with a module per area, sharing the helpers in
//! `common` (skipping, processes, the simulated Uno, ../shared's fixtures and nix-offline, compiled
//! blinkies).
//! The real Nix builds of generated projects take minutes and have their own binary,
//! tests/nix_build.rs.

mod common;

mod all_or_nothing;
mod boards;
mod build;
mod build_checks;
mod cli;
mod decode;
mod doctor;
mod edits;
mod errors;
mod esp_options;
mod firmware;
mod flake_eval;
mod flash;
mod hashes;
mod init;
mod layout;
mod monitor;
mod new;
mod new_habits;
mod new_log;
mod options;
mod ports;
mod report;
mod rp2;
mod settings;
mod sim;
mod user_boards;
mod verify;
