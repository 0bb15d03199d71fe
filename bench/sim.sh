#!/usr/bin/env bash
# How many seconds of simulated time `nixflash sim` runs per second of wall time, next to simavr
# alone on the same firmware for the same simulated time (so the difference is what nixflash's
# tracing of the LED and the console costs).
#
#   bench/sim.sh                          # tests/fixtures/project/firmware.elf on the Uno
#   bench/sim.sh path/to/fw.elf mega2560  # any AVR firmware, on a board of nixflash's database
#   SECS=20 NIXFLASH=path bench/sim.sh
#
# The fixture firmware toggles the LED every 23 µs (some 43,000 changes per simulated second):
# the worst case for the tracing. A blinky changes it twice a second; tests/it/sim prints
# `measured:` lines for the blinkies `nixflash new` makes (Uno, Mega 2560, Leonardo).
# Needs simavr on PATH.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
elf=$(realpath "${1:-$repo/tests/fixtures/project/firmware.elf}")
[ -z "${NIXFLASH:-}" ] || NIXFLASH=$(realpath "$NIXFLASH")
cd "$repo"
board=${2:-uno}
SECS=${SECS:-10}
if [ -z "${NIXFLASH:-}" ]; then
  cargo build --release --quiet
  NIXFLASH=$repo/target/release/nixflash
fi
command -v simavr >/dev/null || { echo "simavr is needed (apt-get install simavr)" >&2; exit 1; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/project"
printf '[package]\nname = "bench"\nversion = "0.1.0"\n\n[package.metadata.nixflash]\nboard = "%s"\n' \
  "$board" > "$dir/project/Cargo.toml"
cd "$dir/project"

# The board's MCU and clock, from nixflash's own database.
show=$("$NIXFLASH" boards show "$board" --json)
mcu=$(printf '%s' "$show" | sed -n 's/.*"mcu": *"\([a-z0-9]*\)".*/\1/p' | head -n 1)
clock=$(printf '%s' "$show" | sed -n 's/.*"clock": *\([0-9]*\).*/\1/p' | head -n 1)

# simavr alone, stopped by an input trace that ends at SECS, as nixflash stops it.
cat > "$dir/stop.vcd" <<EOF
\$timescale 1us \$end
\$scope module bench \$end
\$var wire 1 ! end \$end
\$upscope \$end
\$enddefinitions \$end
#0
0!
#$((SECS * 1000000))
1!
EOF
start=$(date +%s%N)
simavr --input "$dir/stop.vcd" --mcu "$mcu" --freq "$clock" "$elf" >/dev/null 2>&1
end=$(date +%s%N)
raw=$(awk -v s="$start" -v e="$end" -v t="$SECS" 'BEGIN { printf "%.2f", t / ((e - s) / 1e9) }')

"$NIXFLASH" sim --elf "$elf" --duration "$SECS" --json > "$dir/report.json" 2> "$dir/err"
speed=$(sed -n 's/^  "speed": *\([0-9.eE+-]*\).*/\1/p' "$dir/report.json")
changes=$(grep -A 2 '"led"' "$dir/report.json" | sed -n 's/.*"changes": *\([0-9]*\).*/\1/p')
awk -v r="$raw" -v s="$speed" -v secs="$SECS" -v b="$board" -v m="$mcu" -v c="$changes" 'BEGIN {
  printf "%s (%s), %d s of simulated time, %s LED changes\n", b, m, secs, c
  printf "simavr alone:   %.2f simulated seconds per wall second\n", r
  printf "nixflash sim:   %.2f simulated seconds per wall second (%.0f%% of simavr alone)\n", s, 100 * s / r
}'
