#!/usr/bin/env bash
# Throughput and idle CPU of `nixflash monitor` on a pty pair made by socat.
#
#   bench/monitor.sh            # builds and uses target/release/nixflash
#   NIXFLASH=path bench/monitor.sh
#   MB=20 IDLE_SECS=10 bench/monitor.sh
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
command -v socat >/dev/null || { echo "socat is needed (apt-get install socat)" >&2; exit 1; }

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

# Throughput: MB of text lines through the port to stdout (a file), with timestamps.
head -c $((MB * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 76 >"$dir/data"
size=$(stat -c %s "$dir/data")
lines=$(wc -l <"$dir/data")
"$NIXFLASH" monitor --port "$dir/dev" --baud 115200 --timestamps </dev/null >"$dir/tp.out" 2>"$dir/tp.err" & mon=$!; pids+=($mon)
for _ in $(seq 100); do grep -qs Connected "$dir/tp.err" && break; sleep 0.05; done
want=$((size + lines * 15))
start=$(date +%s.%N)
cat "$dir/data" >"$dir/peer" &
while [ "$(stat -c %s "$dir/tp.out")" -lt "$want" ]; do sleep 0.01; done
end=$(date +%s.%N)
kill -TERM $mon; wait $mon || true
awk -v b="$size" -v s="$start" -v e="$end" \
  'BEGIN { printf "throughput: %.1f MB/s (%d bytes with timestamps in %.2f s)\n", b / (e - s) / 1e6, b, e - s }'
if cut -c16- "$dir/tp.out" | cmp -s - "$dir/data"; then
  echo "output: every byte arrived, in order"
else
  echo "output: DIFFERS from what was sent" >&2
  exit 1
fi
