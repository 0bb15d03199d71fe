//! Serial ports: finding the board's port ([`ports`]), opening it with errors that say what to do
//! ([`access`]), and resetting the board through it ([`reset`]); the debug probes plugged in
//! ([`probes`]), found on USB whether or not they have a port. nixflash's serial monitor is
//! [`crate::monitor`].

pub mod access;
pub mod ports;
pub mod probes;
pub mod reset;

pub use ports::{boards_for, choose_port, describe, list_ports, PortChoice, PortInfo};
