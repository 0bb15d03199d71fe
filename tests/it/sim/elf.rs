//! `nixflash sim --elf` outside a project: the board is the one the ELF's chip tells, and
//! `--board` is asked for only when the chip's boards run differently (another clock).

use super::{avr_gcc, json, sim};
use crate::common::process::text;
use crate::common::{on_path, skip};

#[test]
fn an_elf_outside_a_project_runs_on_the_board_its_chip_tells() {
    let test = "an_elf_outside_a_project_runs_on_the_board_its_chip_tells";
    if !on_path("simavr") {
        return skip(test, "simavr is not on PATH (apt install simavr)");
    }
    let dir = tempfile::tempdir().unwrap();
    let idle = "int main(void) { for (;;) {} }\n";
    // The ATmega2560 is the Mega 2560's alone.
    let Some(mega) = avr_gcc(test, dir.path(), "mega", "atmega2560", idle) else {
        return;
    };
    let o = sim(
        dir.path(),
        &[
            "--elf",
            mega.to_str().unwrap(),
            "--duration",
            "0.2",
            "--json",
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(json(&o)["board"], "mega2560");
    assert!(
        err.contains("Board Arduino Mega 2560 (atmega2560: its device note names the atmega2560"),
        "{err}"
    );

    // The ATmega328P runs at 16 MHz on the Uno, at 8 MHz on the 3.3 V Pro Mini: --board says.
    let Some(p328) = avr_gcc(test, dir.path(), "p328", "atmega328p", idle) else {
        return;
    };
    let p328 = p328.to_str().unwrap();
    let o = sim(dir.path(), &["--elf", p328, "--duration", "0.2"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("which board is")
            && err.contains("uno")
            && err.contains("promini-3v3")
            && err.contains("hint: pass --board <id>"),
        "{err}"
    );
    let o = sim(
        dir.path(),
        &[
            "--elf",
            p328,
            "--board",
            "uno",
            "--duration",
            "0.2",
            "--json",
        ],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(json(&o)["board"], "uno");
}
