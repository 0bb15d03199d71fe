// Runs RP2040 firmware in the rp2040js emulator, for nixflash's tests (tests/it/rp2.rs).
//
//   node tests/rp2040/run.mjs <boot ROM> <firmware.uf2> <simulated milliseconds>
//
// The boot ROM (../shared/fixtures/rp2040-bootrom-b1.bin) starts the firmware from flash as on a
// real Pico, the flash holding what the UF2 file's blocks (RP2040 family only) write. Prints one
// JSON object per line, times in simulated nanoseconds:
//   {"t": ..., "gpio": 25, "level": 1}      each change of GPIO25 to low (0) or high (1)
//   {"t": ..., "uart": 0, "line": "..."}    each line the firmware sends on UART0
//   {"end": ..., "flash": <bytes loaded>}   when the time is up
// rp2040js and its dependencies come from tests/rp2040/node_modules (`npm ci` there).
import { readFileSync } from 'node:fs';
import { ConsoleLogger, GPIOPinState, LogLevel, Simulator } from 'rp2040js';

const [bootromPath, uf2Path, millis] = process.argv.slice(2);
if (!bootromPath || !uf2Path || !millis) {
  console.error('usage: node run.mjs <boot ROM> <firmware.uf2> <simulated milliseconds>');
  process.exit(2);
}

const FLASH = 0x10000000;
const RP2040_FAMILY = 0xe48bff56;

// The simulator's clock and chip; it is driven below, not by its real-time `execute()`.
const { clock, rp2040: mcu } = new Simulator();
// Only errors: its notes on peripherals it does not emulate would go to stdout.
mcu.logger = new ConsoleLogger(LogLevel.Error);
const rom = readFileSync(bootromPath);
mcu.loadBootrom(new Uint32Array(rom.buffer, rom.byteOffset, rom.byteLength / 4));

// What the boot ROM's drive would write to flash: each block's 256 bytes at its address.
const uf2 = readFileSync(uf2Path);
let loaded = 0;
for (let at = 0; at + 512 <= uf2.length; at += 512) {
  const word = (i) => uf2.readUInt32LE(at + 4 * i);
  if (word(0) !== 0x0a324655 || word(1) !== 0x9e5d5157 || word(127) !== 0x0ab16f30) {
    throw new Error(`block at byte ${at} of ${uf2Path} has bad magic numbers`);
  }
  if ((word(2) & 0x2000) === 0 || word(7) !== RP2040_FAMILY) {
    continue; // not for the RP2040: its boot ROM skips it too
  }
  const address = word(3);
  const size = word(4);
  mcu.flash.set(uf2.subarray(at + 32, at + 32 + size), address - FLASH);
  loaded += size;
}

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
mcu.gpio[25].addListener((state) => {
  if (state === GPIOPinState.Low || state === GPIOPinState.High) {
    emit({ t: clock.nanos, gpio: 25, level: state === GPIOPinState.High ? 1 : 0 });
  }
});
let line = '';
mcu.uart[0].onByte = (byte) => {
  if (byte === 10) {
    emit({ t: clock.nanos, uart: 0, line: line.replace(/\r$/, '') });
    line = '';
  } else {
    line += String.fromCharCode(byte);
  }
};

// As rp2040js' Simulator runs it (125 MHz), without its real-time pacing.
const cycleNanos = 1e9 / 125e6;
const end = Number(millis) * 1e6;
// Start at boot2, the flash's first 256 bytes, as the boot ROM does once it has checked them; boot2
// sets up execute-in-place and starts the firmware through its vector table.
mcu.core.PC = FLASH;
while (clock.nanos < end) {
  if (mcu.core.waiting) {
    const next = clock.nanosToNextAlarm;
    clock.tick(next > 0 ? Math.min(next, end - clock.nanos) : cycleNanos);
  } else {
    clock.tick(mcu.core.executeInstruction() * cycleNanos);
  }
}
emit({ end: clock.nanos, flash: loaded });
