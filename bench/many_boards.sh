#!/usr/bin/env bash
# Wall time of `nixflash flash --port A --port B` for two simulated Unos (tests/sim/sim-uno.c:
# simavr running Arduino's bootloader on a pty, uploaded to by the real ravedude) in parallel
# (`--jobs 2`) against one after the other (`--jobs 1`, the same code), and their ratio. Each
# round starts two fresh simulators; the median of ROUNDS rounds is reported.
#
#   bench/many_boards.sh                   # tests/fixtures/project/firmware.elf
#   bench/many_boards.sh path/to/uno.elf   # any firmware for the Uno (a bigger one uploads longer)
#   ROUNDS=5 NIXFLASH=path bench/many_boards.sh
#
# Needs cc, libsimavr-dev, libelf-dev, Arduino's bootloaders (arduino-core-avr), avrdude and
# ravedude on PATH. Each simulator runs in real time on a core of its own: on a machine with
# fewer than 2 free cores the parallel run cannot be twice as fast.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
elf=$(realpath "${1:-$repo/tests/fixtures/project/firmware.elf}")
[ -z "${NIXFLASH:-}" ] || NIXFLASH=$(realpath "$NIXFLASH")
ROUNDS=${ROUNDS:-3}
boot=/usr/share/arduino/hardware/arduino/avr/bootloaders/atmega/ATmegaBOOT_168_atmega328.hex
[ -f "$boot" ] || { echo "$boot is missing (apt-get install arduino-core-avr)" >&2; exit 1; }
command -v ravedude >/dev/null || { echo "ravedude is needed (cargo install ravedude --locked)" >&2; exit 1; }
cd "$repo"
if [ -z "${NIXFLASH:-}" ]; then
  cargo build --release --quiet
  NIXFLASH=$repo/target/release/nixflash
fi

dir=$(mktemp -d)
pids=()
stop_sims() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_sims; rm -rf "$dir"' EXIT
cc -O2 -o "$dir/sim-uno" tests/sim/sim-uno.c -lsimavr -lelf

# Starts a simulated Uno (in this shell: it dies with its parent); sets $pty to its pty.
start_sim() {
  local out=$dir/sim-$1.out
  "$dir/sim-uno" --bootloader "$boot" --max-wall-ms 120000 >"$out" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do
    # The whole first line, not just a non-empty file: a read between the sim's bytes finds less.
    pty=$(sed -n '1s/^pty \(.*\)$/\1/p' "$out")
    case $pty in /dev/*) [ -e "$pty" ] && return ;; esac
    sleep 0.05
  done
  echo "sim-uno printed no pty" >&2; exit 1
}

# Seconds one `flash --jobs $1` of two fresh simulated Unos takes, appended to $2.
one_run() {
  local a b t0 t1
  start_sim a; a=$pty
  start_sim b; b=$pty
  t0=$(date +%s.%N)
  (cd "$dir" && "$NIXFLASH" flash --no-build --board uno --elf "$elf" --jobs "$1" \
      --port "$a" --port "$b" >/dev/null 2>"$dir/log") \
    || { cat "$dir/log" >&2; echo "nixflash flash failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  stop_sims
  echo "$t1 - $t0" | bc -l >>"$2"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for _ in $(seq "$ROUNDS"); do
  one_run 2 "$dir/par"
  one_run 1 "$dir/seq"
done
mapfile -t par <"$dir/par"
mapfile -t seq_ <"$dir/seq"
p=$(median <"$dir/par")
s=$(median <"$dir/seq")
printf 'firmware: %s (%s rounds, median)\n' "$elf" "$ROUNDS"
printf 'two boards in parallel (--jobs 2):    %.2f s  (%s)\n' "$p" "${par[*]}"
printf 'one after the other   (--jobs 1):    %.2f s  (%s)\n' "$s" "${seq_[*]}"
printf 'ratio parallel / one after the other: %.2f\n' "$(echo "$p / $s" | bc -l)"
