#!/usr/bin/env bash
# Throughput, idle CPU and latency of `nixflash monitor` on a pty pair made by socat, without
# and with decoding (the firmware's ELF: addresses annotated, defmt frames decoded).
#
#   bench/monitor.sh            # builds and uses target/release/nixflash
#   NIXFLASH=path bench/monitor.sh
#   MB=20 IDLE_SECS=10 bench/monitor.sh
#   ELF=path/to/firmware bench/monitor.sh   # an ESP32-C3 ELF with DWARF and a defmt table
#
# Without ELF, the firmware of `nixflash new --board esp32c3 --log defmt` is compiled with
# ../shared/tools/firmware-env.sh into the target folder the integration tests use for it
# (target/tmp/firmware-esp32c3-defmt; a minute when the tests have built it, several otherwise).
# The streams with addresses and defmt frames come from examples/monitor-bench.rs, which also
# measures the latency from a line written to the pty to its annotation on the monitor's stdout.
#
# Needs socat. A real serial link carries at most ~92 KB/s (921600 baud): the throughput here
# says how much headroom the monitor has, the idle CPU what it costs while the board is quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${MB:-20}
IDLE_SECS=${IDLE_SECS:-10}
if [ -z "${NIXFLASH:-}" ]; then
  cargo build --release --quiet
  NIXFLASH=target/release/nixflash
fi
cargo build --release --quiet --example monitor-bench
BENCH=target/release/examples/monitor-bench
command -v socat >/dev/null || { echo "socat is needed (apt-get install socat)" >&2; exit 1; }

if [ -z "${ELF:-}" ]; then
  env_sh=$PWD/../shared/tools/firmware-env.sh
  [ -f "$env_sh" ] || { echo "set ELF=<firmware>, or put ../shared beside the repository" >&2; exit 1; }
  fw=target/bench-firmware/fw
  rm -rf "$fw"; mkdir -p "$(dirname "$fw")"
  "$NIXFLASH" new "$fw" --board esp32c3 --log defmt --no-git >/dev/null
  target_dir=$PWD/target/tmp/firmware-esp32c3-defmt
  echo "compiling the --log defmt ESP32-C3 template firmware ($fw)..." >&2
  (cd "$fw" && env -u RUSTFLAGS -u CARGO_BUILD_TARGET CARGO_TARGET_DIR="$target_dir" bash -c \
    ". '$env_sh' && exec cargo build --release --locked --quiet -Z build-std=core,alloc \
     --config 'target.riscv32imc-unknown-none-elf.linker=\"ld.lld\"'")
  ELF=$target_dir/riscv32imc-unknown-none-elf/release/fw
fi
echo "ELF: $ELF ($(stat -c %s "$ELF") bytes)"

dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

socat pty,raw,echo=0,link="$dir/dev" pty,raw,echo=0,link="$dir/peer" & pids+=($!)
for _ in $(seq 100); do [ -e "$dir/dev" ] && [ -e "$dir/peer" ] && break; sleep 0.05; done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# Idle: connected, nothing arrives.
"$NIXFLASH" monitor --port "$dir/dev" --baud 115200 </dev/null >"$dir/idle.out" 2>"$dir/idle.err" & mon=$!; pids+=($mon)
for _ in $(seq 100); do grep -qs Connected "$dir/idle.err" && break; sleep 0.05; done
t0=$(ticks $mon); sleep "$IDLE_SECS"; t1=$(ticks $mon)
kill -TERM $mon; wait $mon || true
awk -v t=$((t1 - t0)) -v hz="$hz" -v s="$IDLE_SECS" \
  'BEGIN { printf "idle: %.2f%% of one core (%d ticks in %d s)\n", 100 * t / hz / s, t, s }'

# The streams, each ending in a line the runs wait for.
end=nixflash-bench-end
bytes=$((MB * 1024 * 1024))
head -c $((bytes * 3 / 4)) /dev/urandom | base64 -w 76 >"$dir/text"
"$BENCH" addresses "$ELF" "$bytes" >"$dir/addresses" 2>"$dir/addresses.expect"
"$BENCH" defmt "$ELF" "$bytes" >"$dir/defmt" 2>"$dir/defmt.expect"
for s in text addresses defmt; do printf '%s\r\n' "$end" >>"$dir/$s"; done

# throughput <name> <stream> [monitor args]: the stream through the port to stdout (a file), with
# timestamps; prints MB/s of the port's bytes.
throughput() {
  local name=$1 data=$2; shift 2
  "$NIXFLASH" monitor --port "$dir/dev" --baud 115200 --timestamps "$@" </dev/null \
    >"$dir/$name.out" 2>"$dir/$name.err" & mon=$!; pids+=($mon)
  for _ in $(seq 200); do grep -qs Connected "$dir/$name.err" && break; sleep 0.05; done
  local size start stop c0 c1
  size=$(stat -c %s "$data")
  c0=$(ticks $mon)
  start=$(date +%s.%N)
  cat "$data" >"$dir/peer" &
  until tail -c 64 "$dir/$name.out" | grep -q "$end"; do sleep 0.01; done
  stop=$(date +%s.%N)
  c1=$(ticks $mon)
  kill -TERM $mon; wait $mon || true
  # Per second of wall time, and per second of the monitor's own CPU time (what other processes
  # on a busy machine do not change).
  awk -v n="$name" -v b="$size" -v o="$(stat -c %s "$dir/$name.out")" -v s="$start" -v e="$stop" \
    -v cpu="$(((c1 - c0)))" -v hz="$hz" \
    'BEGIN { printf "throughput, %-25s %6.1f MB/s, %6.1f MB/s of CPU (%d bytes in, %d out, %.2f s, CPU %.2f s)\n",
             n ":", b / (e - s) / 1e6, b / (cpu / hz) / 1e6, b, o, e - s, cpu / hz }'
}
# Lines of a run's output without their timestamps.
plain() { cut -c16- "$dir/$1.out"; }
fail() { echo "output: $*" >&2; exit 1; }

throughput "text, decoding off" "$dir/text"
plain "text, decoding off" | cmp -s - "$dir/text" || fail "text, decoding off: DIFFERS from what was sent"
throughput "text, decoding on" "$dir/text" --elf "$ELF"
grep -q "Decoding with" "$dir/text, decoding on.err" || fail "the monitor did not decode: $(cat "$dir/text, decoding on.err")"
plain "text, decoding on" | cmp -s - "$dir/text" || fail "text, decoding on: DIFFERS from what was sent"
throughput "addresses, decoding off" "$dir/addresses"
plain "addresses, decoding off" | cmp -s - "$dir/addresses" || fail "addresses, decoding off: DIFFERS"
throughput "addresses, decoding on" "$dir/addresses" --elf "$ELF"
want=$(sed -n 's/^expect=//p' "$dir/addresses.expect")
got=$(plain "addresses, decoding on" | grep -c '^0x[0-9a-f]* - ' || true)
[ "$got" = "$want" ] || fail "addresses: $got annotations, $want expected"
throughput "defmt, decoding on" "$dir/defmt" --elf "$ELF"
want=$(sed -n 's/^expect=//p' "$dir/defmt.expect")
got=$(plain "defmt, decoding on" | grep -cE '^(INFO|WARN|ERROR) ' || true)
[ "$got" = "$want" ] || fail "defmt: $got decoded lines, $want expected"
echo "output: every byte arrived in order; every address annotated, every frame decoded"

echo "latency, a line written to the pty to its annotation on stdout (port idle before each):"
"$BENCH" latency "$NIXFLASH" "$ELF" esp32c3 200
