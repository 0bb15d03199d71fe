#!/usr/bin/env bash
# Wall time of a generated project's rebuild after an edit of src/main.rs, with real Nix and
# crane through ../shared/tools/nix-offline: the firmware derivation alone, which should compile
# only the project's own crate.
#
#   bench/rebuild.sh [--board esp32c3] [--runs 5] [--without-riscv-rt-fix]
#
# --without-riscv-rt-fix renders the flake without the template's patch of riscv-rt's build script
# (its `rerun-if-changed=link.x` names a file that never exists, so cargo reran it and recompiled
# riscv-rt, esp-hal and the crates above them in every firmware build): the "before" figure.
# Needs hyperfine (apt-get install hyperfine) and what nix-offline needs (its README).
set -euo pipefail
cd "$(dirname "$0")/.."
board=esp32c3 runs=5 fix=1
while [ $# -gt 0 ]; do
  case "$1" in
    --board) board=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --without-riscv-rt-fix) fix=0; shift ;;
    *) echo "usage: $0 [--board ID] [--runs N] [--without-riscv-rt-fix]" >&2; exit 2 ;;
  esac
done
cargo build --release -q
bin=$PWD/target/release/nixflash
offline=${TMPDIR:-/tmp}/nixflash-bench-nix-offline
bash ../shared/tools/nix-offline/setup.sh "$offline" 2>/dev/null
mapfile -t args < "$offline/override-args"
export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup} CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export HOME=$offline/home

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
name=bench-$(date +%s%N | tail -c 9)
cd "$work"
"$bin" new "$name" --board "$board" >/dev/null
cd "$name"
if [ "$fix" = 0 ]; then
  perl -0pi -e 's/\n\s*# riscv-rt 0\.16.*?\n\s*drv;\n/\n/s' flake.nix
  grep -q overrideVendorCargoPackage flake.nix && { echo "bench: could not remove the fix" >&2; exit 1; }
  git add flake.nix
fi
echo "bench: first build of $name ($board), dependencies included"
/usr/bin/time -f "bench: first build %e s" "$bin" build -- "${args[@]}" >/dev/null 2>"$work/first.log" \
  || { tail -30 "$work/first.log"; exit 1; }
tail -1 "$work/first.log"
echo "bench: rebuilds after an edit of src/main.rs ($([ "$fix" = 1 ] && echo with || echo without) the riscv-rt fix)"
hyperfine --runs "$runs" \
  --prepare "echo '// edit '\$(date +%s%N) >> src/main.rs && git add src/main.rs" \
  "nix --extra-experimental-features 'nix-command flakes' build .#default ${args[*]}"
# What cargo compiled in one more rebuild.
echo '// one more edit' >> src/main.rs && git add src/main.rs
nix --extra-experimental-features 'nix-command flakes' build .#default -L "${args[@]}" 2>&1 \
  | grep -E '> +(Compiling|Finished)' | sed 's/^/bench:   /' || true
