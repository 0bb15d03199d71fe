//! Resetting a board through its port's modem lines (DTR, RTS): the sequence comes from the
//! board's family, chosen by the port's USB id (an ESP's built-in USB-Serial-JTAG needs another
//! sequence than a USB-UART bridge).

use std::path::Path;
use std::time::Duration;

use serialport::SerialPort;

use crate::board::family::ResetStep;
use crate::board::{Board, UsbId};

/// The reset when no board is known: DTR (and RTS) low, then high, the auto-reset that most
/// boards with a USB-serial bridge wire to their RESET pin.
pub const WITHOUT_A_BOARD: [ResetStep; 5] = [
    ResetStep::Dtr(false),
    ResetStep::Rts(false),
    ResetStep::Wait(100),
    ResetStep::Dtr(true),
    ResetStep::Rts(true),
];

/// Runs `steps` on an open port.
pub fn run(port: &mut dyn SerialPort, steps: &[ResetStep]) -> serialport::Result<()> {
    for step in steps {
        match *step {
            ResetStep::Dtr(level) => port.write_data_terminal_ready(level)?,
            ResetStep::Rts(level) => port.write_request_to_send(level)?,
            ResetStep::Wait(ms) => std::thread::sleep(Duration::from_millis(ms)),
        }
    }
    Ok(())
}

/// The sequence that resets `board` through the port at `path`: the one for the port's USB id
/// if the family has one, else the family's default. The id is looked up in the system's port
/// list (a symlink such as /dev/serial/by-id/... is followed).
pub fn steps_for(board: &Board, path: &str) -> Vec<ResetStep> {
    board.family().reset.for_usb_id(usb_id_of(path)).to_vec()
}

/// The USB id of the port at `path`, if the system lists it as a USB port.
fn usb_id_of(path: &str) -> Option<UsbId> {
    let real = Path::new(path).canonicalize().ok()?;
    super::ports::list_ports()
        .ok()?
        .into_iter()
        .find(|p| Path::new(&p.name).canonicalize().ok().as_deref() == Some(&real))?
        .usb_id()
}

/// The sequence as a family file writes it, for messages.
pub fn describe(steps: &[ResetStep]) -> String {
    steps
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Database;

    #[test]
    fn each_family_resets_its_way_and_the_esp_usb_jtag_its_own() {
        let db = Database::builtin().unwrap();
        let uno = db.get("uno").unwrap().family();
        assert_eq!(
            describe(uno.reset.for_usb_id(None)),
            "dtr=0 rts=0 wait=100 dtr=1 rts=1"
        );
        let esp = db.get("esp32c3").unwrap().family();
        let bridge: UsbId = "10c4:ea60".parse().unwrap();
        let jtag: UsbId = "303a:1001".parse().unwrap();
        assert_eq!(
            describe(esp.reset.for_usb_id(Some(bridge))),
            "dtr=0 rts=1 wait=100 rts=0"
        );
        assert_eq!(
            describe(esp.reset.for_usb_id(Some(jtag))),
            "dtr=0 wait=100 rts=1 dtr=0 rts=1 wait=100 rts=0"
        );
    }
}
