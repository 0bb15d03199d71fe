//! The Mega 2560's and the Leonardo's blinkies, each on its own MCU at its own clock.

use super::{avr_gcc, json, led_interval, ready, sim};
use crate::common::firmware::Kind;
use crate::common::process::text;

#[test]
fn mega2560_and_leonardo_run_their_own_blinkies_at_their_clocks() {
    let test = "mega2560_and_leonardo_run_their_own_blinkies_at_their_clocks";
    for (kind, board, name, pin, uart) in [
        (
            Kind::Mega2560,
            "mega2560",
            "Arduino Mega 2560",
            "PB7",
            "USART0",
        ),
        (
            Kind::Leonardo,
            "leonardo",
            "Arduino Leonardo",
            "PC7",
            "USART1",
        ),
    ] {
        let Some(b) = ready(test, kind) else {
            return;
        };
        let greeting = format!("Hello from fw on the {name}!");
        let o = sim(
            &b.project,
            &[
                "--elf",
                b.elf.to_str().unwrap(),
                "--duration",
                "3",
                "--expect",
                &greeting,
                "--json",
            ],
        );
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{board}: {err}");
        let r = json(&o);
        assert_eq!(r["board"], board);
        assert_eq!(r["led"]["pin"], pin);
        assert_eq!(r["uart"]["name"], uart);
        assert_eq!(r["uart"]["text"], format!("{greeting}\r\n"), "{board}: {r}");
        // 500 ms per change only if the simulated CPU runs at the board's 16 MHz.
        let (interval, changes) = led_interval(&r, board);
        assert!(changes >= 6, "{board}: {r}");
        if board == "leonardo" {
            // Its USB port is the chip's own, with no console on it: the firmware's console is
            // USART1 on the TX/RX pins, which simavr simulates, and nixflash says where it is.
            assert!(
                err.contains(
                    "the Arduino Leonardo's console is its TX/RX pins (USART1), not its USB port"
                ),
                "{err}"
            );
        }
        crate::common::measured(&format!(
            "the {name} blinky in simavr: LED every {:.4} ms, {:.2} simulated seconds \
             per wall second",
            interval * 1e3,
            r["speed"].as_f64().unwrap()
        ));
    }
}

/// Firmware for the Leonardo whose console would be the chip's own USB port: it sends nothing on
/// the USART, and blinks the LED (PC7) every 500 ms with avr-libc's delay, which counts cycles of
/// a 16 MHz clock.
const SILENT_C: &str = "#define F_CPU 16000000UL\n\
    #include <avr/io.h>\n\
    #include <util/delay.h>\n\
    int main(void) {\n\
    \tDDRC |= _BV(PC7);\n\
    \tfor (;;) {\n\
    \t\tPORTC ^= _BV(PC7);\n\
    \t\t_delay_ms(500);\n\
    \t}\n\
    }\n";

#[test]
fn a_silent_leonardo_uart_is_said_and_the_led_still_counted() {
    let test = "a_silent_leonardo_uart_is_said_and_the_led_still_counted";
    let Some(leonardo) = ready(test, Kind::Leonardo) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(elf) = avr_gcc(test, tmp.path(), "silent", "atmega32u4", SILENT_C) else {
        return;
    };
    let elf = elf.to_str().unwrap();
    let o = sim(
        &leonardo.project,
        &["--elf", elf, "--duration", "3", "--json"],
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "--- The simulated USART1 stayed silent: the firmware sent nothing on the Arduino \
             Leonardo's TX/RX pins. A console on the atmega32u4's own USB port cannot show here: \
             simavr attaches no USB host to it"
        ),
        "{err}"
    );
    let r = json(&o);
    assert_eq!(r["uart"]["bytes"], 0, "{r}");
    assert_eq!(r["uart"]["text"], "", "{r}");
    // The LED is counted all the same: 500 ms apart at the Leonardo's 16 MHz.
    let (_, changes) = led_interval(&r, "leonardo");
    assert!(changes >= 6, "{r}");
    assert!(err.contains("steadily every 500.0 ms"), "{err}");

    // A text expected on the silent console never comes.
    let o = sim(
        &leonardo.project,
        &["--elf", elf, "--duration", "1", "--expect", "Hello"],
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: the firmware never sent \"Hello\" on USART1 in 1.000 s"),
        "{err}"
    );
}
