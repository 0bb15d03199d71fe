#!/usr/bin/env bash
# Nix against cargo on the same generated project (issue 22, part 4), each measure one hyperfine
# run with both commands side by side, so that the load of a shared machine hits both:
#   rebuild  after an edit of src/main.rs: `nix build` vs cargo's incremental `cargo build --release`
#            (target: nix <= 1.5 x cargo + 1 s);
#   cold     `nix build` with the project's own derivations (vendor dir, dependencies, firmware)
#            out of the store vs `cargo build --release` into an empty target folder, the crates
#            and the toolchain present on both sides (target: nix <= 1.5 x cargo).
#
#   bench/speed.sh [--board uno|esp32c3|pico]... [--runs 5] [--cold-runs 2] [--only rebuild|cold]
#                  [--nixflash BIN]   (another nixflash's templates: a "before" figure)
#
# Prerequisites (a fresh machine):
#   ../shared/tools/install-nix.sh && ../shared/tools/install-firmware-tools.sh
#   apt-get install hyperfine jq lld
#   cargo install flip-link elf2uf2-rs     (Pico only: the stand-ins tests/fixtures/nix-offline use)
# Nix builds through ../shared/tools/nix-offline (real Nix, crane and nixpkgs logic; Debian's
# rustc 1.96 as the toolchain). cargo uses that very toolchain (its store path: same rustc, same
# sysroot, and for the ESP32-C3 and the Pico the same prebuilt core/alloc, as rustup's rust-std
# would give), with the crates already in ~/.cargo (a first, untimed build fetches them) and
# arduino-hal from the avr-hal bundle. What "cold" keeps for Nix: the toolchain, the hooks,
# crane-utils and each crate's unpacked source (cargo-package-*/cargo-src-*, as cargo keeps
# ~/.cargo/registry/src); what it deletes: every derivation output named after the project
# (firmware, -deps, -remap-paths) and the vendor folder (vendor-cargo-deps, vendor-registry,
# cargo-vendor-dir) and crane's dummy source, each unless another store path still uses it
# (another project with the same Cargo.lock); the firmware and -deps must go.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
boards=() runs=5 cold_runs=2 only="" bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --board) boards+=("$2"); shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --cold-runs) cold_runs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --nixflash) bin=$(realpath "$2"); shift 2 ;;
    *) echo "usage: $0 [--board uno|esp32c3|pico]... [--runs N] [--cold-runs N] [--only rebuild|cold]" >&2; exit 2 ;;
  esac
done
[ ${#boards[@]} -gt 0 ] || boards=(uno esp32c3 pico)
for t in nix hyperfine jq ld.lld; do command -v $t >/dev/null || { echo "speed: $t is missing (see the top of $0)" >&2; exit 2; }; done

if [ -z "$bin" ]; then
  cargo build -q
  bin=$repo/target/debug/nixflash
fi
offline=${TMPDIR:-/tmp}/nixflash-speed-offline
bash ../shared/tools/nix-offline/setup.sh "$offline" 2>/dev/null
mapfile -t args < "$offline/override-args"

# nix-offline's nixpkgs with tests/fixtures/nix-offline/overlay.nix on top (flip-link and picotool
# for the Pico, shellcheck...), as tests/it/common/offline.rs makes it.
tests=$offline/nixpkgs-speed
rm -rf "$tests" && cp -r "$offline/nixpkgs" "$tests" && mv "$tests/default.nix" "$tests/stand-in.nix"
mkdir -p "$offline/host-tools"
host() { command -v "$1" || echo "/$1-is-not-installed"; }
runnable() { if p=$(command -v "$1"); then cp "$p" "$offline/host-tools/$1"; echo "$offline/host-tools/$1"; else echo "/$1-is-not-installed"; fi; }
sed -e "s|@RAVEDUDE@|$(host ravedude)|" -e "s|@ESPFLASH@|$(host espflash)|" -e "s|@SIMAVR@|$(host simavr)|" \
  -e "s|@QEMU@|$(host qemu-system-arm)|" -e "s|@PROBE_RS@|$(host probe-rs)|" \
  -e "s|@FLIP_LINK@|$(runnable flip-link)|" -e "s|@ELF2UF2@|$(runnable elf2uf2-rs)|" \
  "$repo/tests/fixtures/nix-offline/overlay.nix" > "$tests/tests-overlay.nix"
echo 'args: (import ./stand-in.nix args).appendOverlays [ (import ./tests-overlay.nix) ]' > "$tests/default.nix"
chmod -R a+rX "$tests" "$offline/host-tools"
args=("${args[@]/#path:$offline\/nixpkgs/path:$tests}")

export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup} CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export HOME=$offline/home CARGO_NET_GIT_FETCH_WITH_CLI=true
unset RUSTFLAGS CARGO_BUILD_TARGET CARGO_TARGET_DIR
nixc="nix --extra-experimental-features 'nix-command flakes'"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" && ln -s "$(command -v ld.lld)" "$work/bin/rust-lld"
summary=$work/summary
ratio() { jq -r '.results | "\(.[0].mean) \(.[1].mean)"' "$1"; }

for board in "${boards[@]}"; do
  # A fixed name: a second run with the same templates finds the dependencies built (the cold
  # measure deletes them itself), and cargo's incremental target folder is kept the same way.
  name=speed-$board
  CARGO_TARGET_DIR=$offline/cargo-target/$board-$(cksum < "$bin" | cut -d' ' -f1)
  export CARGO_TARGET_DIR
  cd "$work" && "$bin" new "$name" --board "$board" >/dev/null && cd "$name"
  echo "speed: $board: first build of $name (nixflash build: writes nix/std-Cargo.lock)"
  "$bin" build -- "${args[@]}" --no-link >/dev/null 2>"$work/first.log" || { tail -30 "$work/first.log"; exit 1; }
  drv=$(eval "$nixc eval --raw .#default.drvPath \"\${args[@]}\"" 2>/dev/null)
  # cargo with the toolchain the flake built with.
  toolchain=$(nix-store -q --references "$drv" | grep -E 'rust-host-1\.96(-with-std)?\.drv$' | head -1)
  toolchain=$(nix-store -q --outputs "$toolchain")
  # setsid: Nix's builder runs in a session of its own, which Linux schedules as a group of its
  # own (autogroup) against the other sessions' load; cargo gets the same.
  printf '#!/bin/sh\nexport PATH=%s/bin:%s:$PATH\nexec setsid -w cargo build --release --locked -q "$@"\n' \
    "$toolchain" "$work/bin" > "$work/cargo-$board" && chmod +x "$work/cargo-$board"
  "$work/cargo-$board" || { echo "speed: cargo failed for $board" >&2; exit 1; }
  # What the cold Nix build deletes (see the top).
  nix-store -qR "$drv" | grep '\.drv$' \
    | grep -E -- "-($name-[^/]*|vendor-cargo-deps|vendor-registry|cargo-vendor-dir|source)\.drv$" \
    | xargs nix-store -q --outputs > "$work/cold-$board"
  # One path at a time (a path another process holds stays; two passes for the order), then check
  # that the firmware and its dependencies are gone.
  cat > "$work/forget-$board" <<EOF
#!/bin/sh
for pass in 1 2; do
  for p in \$(cat $work/cold-$board); do [ ! -e "\$p" ] || nix-store --delete "\$p" >/dev/null 2>&1; done
done
rm -rf $work/cold-target
for p in \$(grep -E -- "-$name-(deps-)?[0-9.]+\$" $work/cold-$board); do
  [ ! -e "\$p" ] || { echo "speed: could not delete \$p" >&2; exit 1; }
done
EOF
  chmod +x "$work/forget-$board"
  nixb="setsid -w $nixc build .#default --no-link ${args[*]}"
  # hyperfine runs this with sh (dash here), which has no $RANDOM: a fixed edit would give the
  # same sources as an earlier run of this script, whose outputs Nix still has (no rebuild at all).
  edit="echo \"// edit \$(date +%s%N)\" >> src/main.rs && git add src/main.rs"
  if [ "$only" != cold ]; then
    echo "speed: $board: rebuild after an edit of src/main.rs"
    hyperfine --runs "$runs" --warmup 1 --export-json "$work/rebuild-$board.json" --prepare "$edit" \
      -n nix "$nixb" -n cargo "$work/cargo-$board"
    read -r n c < <(ratio "$work/rebuild-$board.json")
    awk -v b="$board" -v n="$n" -v c="$c" 'BEGIN { t = 1.5 * c + 1; printf "%-8s rebuild  nix %6.2f s  cargo %6.2f s  ratio %5.2f  target <= %.2f s: %s\n", b, n, c, n / c, t, (n <= t ? "holds" : "MISSED") }' | tee -a "$summary"
  fi
  if [ "$only" != rebuild ]; then
    echo "speed: $board: cold build"
    hyperfine --runs "$cold_runs" --export-json "$work/cold-$board.json" \
      --prepare "$work/forget-$board" \
      -n nix "$nixb" -n cargo "env CARGO_TARGET_DIR=$work/cold-target $work/cargo-$board"
    read -r n c < <(ratio "$work/cold-$board.json")
    awk -v b="$board" -v n="$n" -v c="$c" 'BEGIN { printf "%-8s cold     nix %6.2f s  cargo %6.2f s  ratio %5.2f  target <= 1.50: %s\n", b, n, c, n / c, (n / c <= 1.5 ? "holds" : "MISSED") }' | tee -a "$summary"
  fi
done
echo "speed: summary"
cat "$summary"
cp "$summary" "${TMPDIR:-/tmp}/nixflash-speed-summary.txt"
