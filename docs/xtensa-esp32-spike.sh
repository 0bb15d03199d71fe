#!/usr/bin/env bash
# Re-runs the issue 23 spike (docs/xtensa-esp32.md): how far classic ESP32 (Xtensa) gets with a
# given upstream rustc. Works only in a temp dir; never touches the repo. Each stage reports and the
# script goes on. Usage: docs/xtensa-esp32-spike.sh [--rustc PATH] [--cargo PATH] [--keep DIR]
# --cargo defaults to the cargo next to the rustc, else the one on PATH. --keep DIR keeps all logs.
# Slow machine: CARGO_BUILD_JOBS=1 nice -n 19 docs/xtensa-esp32-spike.sh
set -uo pipefail

RUSTC_BIN=/usr/bin/rustc CARGO_BIN="" KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rustc) RUSTC_BIN="$2"; shift 2 ;;
    --cargo) CARGO_BIN="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -z "$CARGO_BIN" ] && [ -x "$(dirname "$RUSTC_BIN")/cargo" ] && CARGO_BIN="$(dirname "$RUSTC_BIN")/cargo"
CARGO_BIN="${CARGO_BIN:-cargo}"

missing=0
need() { command -v "$1" >/dev/null 2>&1 || { echo "missing: $1 ($2)"; missing=1; }; }
need "$RUSTC_BIN" "pass --rustc PATH; Debian: apt-get install rustc-web, or a rust-overlay toolchain"
need "$CARGO_BIN" "cargo: rustup or apt-get install cargo-web, or pass --cargo PATH"
for t in xtensa-lx106-elf-ld xtensa-lx106-elf-readelf; do need "$t" "apt-get install binutils-xtensa-lx106"; done
need espflash "cargo install espflash"
need python3 "apt-get install python3"
[ "$missing" = 0 ] || exit 1
SYSROOT=$("$RUSTC_BIN" --print sysroot)
[ -d "$SYSROOT/lib/rustlib/src/rust/library" ] || { echo "missing: rust-src in $SYSROOT (build-std needs it)"; exit 1; }

if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && W=$(cd "$KEEP" && pwd); else
  W=$(mktemp -d -t xtensa-spike.XXXXXX); trap 'rm -rf "$W"' EXIT
fi
export RUSTC="$RUSTC_BIN" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$W/target"
# rustup's cargo proxy must not switch to a rust-toolchain.toml pin; RUSTFLAGS is set per build.
export RUSTUP_TOOLCHAIN="${RUSTUP_TOOLCHAIN:-stable}"
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET
echo "workdir: $W"; "$RUSTC_BIN" -vV | sed -n '1p;/^LLVM/p'; "$CARGO_BIN" -V
declare -a SUMMARY
report() { SUMMARY+=("$1: $2"); echo ">>> $1: $2"; }
# First error line of a log (rustc, cargo or LLVM), plus LLVM's "In function" line if there is one.
first_error() {
  local e; e=$(grep -m1 -E '^error|LLVM ERROR|^fatal' "$1")
  grep -q 'LLVM ERROR' <<<"$e" && e="$e | $(grep -m1 '^In function' "$1")"
  echo "${e:-no error line, see $1}"
}
cargo_build() { # log-file, then cargo args; runs in the current dir
  local log="$1"; shift
  "$CARGO_BIN" build --release "$@" >"$log" 2>&1
}
lib_crate() { # dir: an empty no_std lib crate
  mkdir -p "$1/src"; printf '#![no_std]\n' >"$1/src/lib.rs"
  printf '[package]\nname = "%s"\nversion = "0.1.0"\nedition = "2021"\n' "$(basename "$1")" >"$1/Cargo.toml"
}
# Prints an ESP32 app image's header: magic, segments, entry, checksum, appended SHA-256.
image_info() {
  python3 - "$1" <<'PY'
import hashlib, struct, sys
img = open(sys.argv[1], "rb").read()
magic, count, mode, freq, entry = struct.unpack("<4BI", img[:8])
chip, hashed = struct.unpack("<H", img[12:14])[0], img[23]
print(f"  magic=0x{magic:02X} ({'ok' if magic == 0xE9 else 'BAD'}) segments={count} mode={mode} "
      f"size/freq=0x{freq:02X} entry=0x{entry:08X} chip_id={chip} hash_appended={hashed}")
pos, xor = 24, 0xEF
for n in range(count):
    load, size = struct.unpack("<II", img[pos:pos + 8])
    for byte in img[pos + 8:pos + 8 + size]:
        xor ^= byte
    print(f"  segment {n}: load=0x{load:08X} size=0x{size:X}, data at file offset 0x{pos + 8:X}")
    pos += 8 + size
pos += 15 - pos % 16  # the checksum is the last byte of a 16-byte block
print(f"  checksum 0x{img[pos]:02X} at 0x{pos:X}, computed 0x{xor:02X}: {'ok' if img[pos] == xor else 'BAD'}")
if hashed:
    ok = hashlib.sha256(img[:pos + 1]).digest() == img[pos + 1:pos + 33]
    print(f"  sha256 {'ok' if ok else 'BAD'}; image {len(img)} bytes, expected {pos + 33}")
sys.exit(0 if magic == 0xE9 and img[pos] == xor else 1)
PY
}
# ELF check + espflash image + header; prints "PASS ..." or the failing step.
elf_to_image() {
  local elf="$1" machine
  machine=$(xtensa-lx106-elf-readelf -h "$elf" | sed -n 's/^ *Machine: *//p')
  echo "  readelf Machine: $machine; e_machine=$(python3 -c 'import sys,struct; print(struct.unpack_from("<H", open(sys.argv[1],"rb").read(), 18)[0])' "$elf")" >&2
  grep -q Xtensa <<<"$machine" || { echo "FAIL (ELF Machine is '$machine', not Xtensa)"; return; }
  if ! espflash save-image --chip esp32 "$elf" "$elf.bin" >"$elf.espflash.log" 2>&1; then
    echo "FAIL (espflash: $(grep -m1 -vE '^\s*$' "$elf.espflash.log"))"; return
  fi
  if image_info "$elf.bin" >&2; then echo "PASS (links, Xtensa ELF, espflash image $(stat -c %s "$elf.bin") bytes)"
  else echo "FAIL (image header check)"; fi
}

echo; echo "== Stage A: built-in target xtensa-esp32-none-elf, build-std core"
lib_crate "$W/a"; TARGET=xtensa-esp32-none-elf
if (cd "$W/a" && cargo_build "$W/a.log" -Z build-std=core --target xtensa-esp32-none-elf); then
  report A "PASS (built-in target builds core)"; A_OK=1
else report A "FAIL ($(first_error "$W/a.log"))"; A_OK=0; fi

echo; echo "== Stage B: JSON target from $RUSTC_BIN's spec with LLVM's Xtensa data layout"
JSON="$W/xtensa-esp32-none-elf.json"
if "$RUSTC_BIN" -Z unstable-options --print target-spec-json --target xtensa-esp32-none-elf >"$W/builtin.json" 2>"$W/spec.log" &&
  python3 - "$W/builtin.json" "$JSON" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec.pop("is-builtin", None)
spec.update({"data-layout": "e-m:e-p:32:32-i8:8:32-i16:16:32-i64:64-n32",
             "linker": "xtensa-lx106-elf-ld", "linker-flavor": "gnu"})
json.dump(spec, open(sys.argv[2], "w"), indent=2, sort_keys=True)
PY
then
  lib_crate "$W/b"; B_ARGS=(-Z "build-std=core,alloc" -Z json-target-spec --target "$JSON")
  if (cd "$W/b" && RUSTFLAGS="-C target-feature=-fp" cargo_build "$W/b-minus-fp.log" "${B_ARGS[@]}"); then
    report "B (-fp)" "PASS (core, alloc, compiler_builtins build with -C target-feature=-fp)"
  else report "B (-fp)" "FAIL ($(first_error "$W/b-minus-fp.log"))"; fi
  if (cd "$W/b" && cargo_build "$W/b-fpu.log" "${B_ARGS[@]}"); then
    report "B (FPU)" "PASS (core, alloc, compiler_builtins build with the FPU on)"; FP_FLAGS=""
  else report "B (FPU)" "FAIL ($(first_error "$W/b-fpu.log"))"; FP_FLAGS="-C target-feature=-fp"; fi
else
  report B "FAIL (no target spec: $(head -n1 "$W/spec.log"))"; FP_FLAGS="-C target-feature=-fp"
fi
# C and D use the built-in target if A passed (linker swapped for lx106's ld), else the JSON file.
if [ "$A_OK" = 1 ]; then
  TGT=(--target "$TARGET"); LINK="-C linker=xtensa-lx106-elf-ld -C linker-flavor=ld"
else TGT=(-Z json-target-spec --target "$JSON"); LINK=""; fi

echo; echo "== Stage C: esp-hal 1.2 blinky (GPIO2) for esp32, flags: ${FP_FLAGS:-none} $LINK"
mkdir -p "$W/blinky/src"
cat >"$W/blinky/Cargo.toml" <<'EOF'
[package]
name = "blinky"
version = "0.1.0"
edition = "2021"
[dependencies]
esp-hal = { version = "1.2", features = ["esp32"] }
esp-bootloader-esp-idf = { version = "0.6", features = ["esp32"] }
esp-backtrace = { version = "0.20", features = ["esp32", "panic-handler", "println"] }
esp-println = { version = "0.18", features = ["esp32"] }
[profile.release]
codegen-units = 1
debug = 2
lto = "fat"
opt-level = "s"
EOF
echo 'fn main() { println!("cargo:rustc-link-arg=-Tlinkall.x"); }' >"$W/blinky/build.rs"
cat >"$W/blinky/src/main.rs" <<'EOF'
#![no_std]
#![no_main]
use esp_backtrace as _;
use esp_hal::delay::Delay;
use esp_hal::gpio::{Level, Output, OutputConfig};
use esp_println::println;
esp_bootloader_esp_idf::esp_app_desc!();
#[esp_hal::main]
fn main() -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default());
    let mut led = Output::new(peripherals.GPIO2, Level::Low, OutputConfig::default());
    let delay = Delay::new();
    println!("Hello from blinky on the ESP32 DevKit v1!");
    loop {
        led.toggle();
        delay.delay_millis(500);
    }
}
EOF
(cd "$W/blinky" && RUSTFLAGS="$FP_FLAGS $LINK" cargo_build "$W/c.json" -Z build-std=core,alloc "${TGT[@]}" --keep-going --message-format=json)
mapfile -t C_OUT < <(python3 - "$W/c.json" <<'PY'
import json, sys
errors, elf, built = {}, "", 0
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact":
        elf = msg.get("executable") or elf
        built += any("/xtensa-esp32-none-elf/" in f for f in msg["filenames"])
    if msg.get("reason") == "compiler-message" and msg["message"]["level"] in ("error", "error: internal compiler error"):
        name = msg["package_id"].split("#")[-1].replace("@", " ")
        code = (msg["message"].get("code") or {}).get("code")
        first = f"error[{code}]: " if code else "error: "
        errors.setdefault(name, [0, first + msg["message"]["message"].splitlines()[0]])[0] += 1
print(elf)  # line 1: the linked ELF or empty; 2: target crates built; then one per failed crate
print(built)
for name, (count, first) in errors.items():
    print(f"{name}: {count} error(s), first: {first}")
PY
)
grep -E '^(error|warning: build failed)|LLVM ERROR' "$W/c.json" | sort -u | sed 's/^/  cargo: /' | head -n 20
[ "${#C_OUT[@]}" -gt 2 ] && printf '  failed: %s\n' "${C_OUT[@]:2}"
if [ -n "${C_OUT[0]:-}" ]; then report C "$(elf_to_image "${C_OUT[0]}")"
elif [ "${#C_OUT[@]}" -gt 2 ]; then
  report C "FAIL (${C_OUT[1]} target crates built, $((${#C_OUT[@]} - 2)) with errors; ${C_OUT[2]})"
else report C "FAIL (${C_OUT[1]:-0} target crates built; $(first_error "$W/c.json"))"; fi

echo; echo "== Stage D: minimal program without crates (own linker script, hand-written app descriptor)"
mkdir -p "$W/minimal/src"
printf '[package]\nname = "minimal"\nversion = "0.1.0"\nedition = "2021"\n' >"$W/minimal/Cargo.toml"
# codegen-units = 16 is a workaround for LLVM 22 (llvm#200132): a function's literal pool goes to the
# end of the section emitted before it, unaligned; with one function per unit it lands at offset 0.
printf '[profile.release]\nopt-level = "s"\npanic = "abort"\ncodegen-units = 16\n' >>"$W/minimal/Cargo.toml"
cat >"$W/minimal/esp32-min.ld" <<'EOF'
ENTRY(start)
MEMORY {
  iram (RX) : ORIGIN = 0x40080000, LENGTH = 128K
  dram (RW) : ORIGIN = 0x3FFB0000, LENGTH = 176K
  drom (R)  : ORIGIN = 0x3F400020, LENGTH = 4M - 0x20
}
SECTIONS {
  .rodata_desc : ALIGN(4) { KEEP(*(.rodata_desc .rodata_desc.*)) } > drom
  .rodata : ALIGN(4) { *(.rodata .rodata.* .srodata .srodata.*) } > drom
  .iram.text : ALIGN(4) { *(.literal .literal.* .text .text.*) } > iram
  .dram.data : ALIGN(4) { *(.data .data.*) } > dram
  .dram.bss (NOLOAD) : ALIGN(4) { *(.bss .bss.* COMMON) } > dram
  /DISCARD/ : { *(.xtensa.info) *(.comment) }
}
EOF
cat >"$W/minimal/src/main.rs" <<'EOF'
#![no_std]
#![no_main]
use core::ptr::{read_volatile, write_volatile};
const GPIO_OUT_W1TS: *mut u32 = 0x3FF4_4008 as *mut u32;
const GPIO_OUT_W1TC: *mut u32 = 0x3FF4_400C as *mut u32;
const GPIO_ENABLE_W1TS: *mut u32 = 0x3FF4_4024 as *mut u32;
const GPIO_FUNC2_OUT_SEL_CFG: *mut u32 = 0x3FF4_4538 as *mut u32;
const IO_MUX_GPIO2: *mut u32 = 0x3FF4_9040 as *mut u32;
const LED: u32 = 1 << 2;
// esp_app_desc_t (256 bytes): magic, version @16, project @48, time @80, date @96, idf_ver @112,
// max_efuse_blk_rev_full @178 (u16), mmu_page_size @180 (log2 of 64 KiB).
const fn put(mut d: [u8; 256], at: usize, s: &[u8]) -> [u8; 256] {
    let mut i = 0;
    while i < s.len() { d[at + i] = s[i]; i += 1; } d
}
const fn desc() -> [u8; 256] {
    let d = put([0; 256], 0, &0xABCD_5432u32.to_le_bytes());
    let d = put(put(put(d, 16, b"0.1.0"), 48, b"minimal"), 80, b"00:00:00");
    put(put(put(d, 96, b"Dec  3 2026"), 112, b"v5.5"), 178, &[0xFF, 0xFF, 16])
}
#[no_mangle] #[link_section = ".rodata_desc"] #[used]
pub static esp_app_desc: [u8; 256] = desc();
mod wait { // own module, own codegen unit (see Cargo.toml)
    use core::ptr::{read_volatile, write_volatile};
    static mut COUNTER: u32 = 0;
    #[inline(never)]
    pub fn delay(n: u32) {
        for i in 0..n {
            unsafe { write_volatile(&raw mut COUNTER, read_volatile(&raw const COUNTER).wrapping_add(i)) };
        }
    }
}
#[no_mangle]
pub extern "C" fn start() -> ! {
    unsafe {
        write_volatile(IO_MUX_GPIO2, (read_volatile(IO_MUX_GPIO2) & !(0b111 << 12)) | (2 << 12));
        write_volatile(GPIO_FUNC2_OUT_SEL_CFG, 0x100);
        write_volatile(GPIO_ENABLE_W1TS, LED);
    }
    loop {
        unsafe { write_volatile(GPIO_OUT_W1TS, LED) };
        wait::delay(2_000_000);
        unsafe { write_volatile(GPIO_OUT_W1TC, LED) };
        wait::delay(2_000_000);
    }
}
mod panic { // own codegen unit, so `start` comes first in its unit
    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
}
EOF
D_FLAGS="$FP_FLAGS $LINK -C link-arg=-Tesp32-min.ld -C link-arg=-L$W/minimal"
if (cd "$W/minimal" && RUSTFLAGS="$D_FLAGS" cargo_build "$W/d.log" -Z build-std=core "${TGT[@]}"); then
  report D "$(elf_to_image "$W/target/xtensa-esp32-none-elf/release/minimal")"
else report D "FAIL ($(first_error "$W/d.log"))"; fi

echo; echo "== Summary ($("$RUSTC_BIN" -V))"
printf '%s\n' "${SUMMARY[@]}"
