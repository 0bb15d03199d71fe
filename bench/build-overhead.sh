#!/bin/sh
# nixflash's own overhead over a bare `nix build` (budget: 20 ms, issue 22), on the test fixture
# project (tests/fixtures/project: the flake needs no nixpkgs). Both commands evaluate the flake and find
# the firmware already in the store, so the difference is what nixflash adds: reading the project
# (Cargo.toml, cargo metadata only when it leaves the binary open), the git tracking check (one
# `git status`), the std-lock pin check, the size report. nix's version is remembered between runs
# (~/.cache/nixflash/nix-version), so it is not asked here after the first build.
#
# Usage: bench/build-overhead.sh [nixflash-binary]   (default: target/release/nixflash)
# Uses hyperfine when installed (apt-get install -y hyperfine), else a loop with date +%s%N.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$repo/target/release/nixflash}")
runs=${RUNS:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp -r "$repo/tests/fixtures/project" "$repo/tests/fixtures/overlay" "$work/"
cd "$work/project"
sed -i "s|@OVERLAY@|$work/overlay|" flake.nix
echo "$work" > nonce
git init -q
git add -A
# The first build realises rust-src, writes nix/std-Cargo.lock and flake.lock, and builds.
"$bin" build >/dev/null 2>&1
git add -A
git -c user.name=bench -c user.email=bench@nixflash.invalid -c commit.gpgsign=false commit -qm bench

# PATH without cargo, for the no-toolchain case.
nocargo="$work/bin"
mkdir -p "$nocargo"
ln -s "$(command -v nix)" "$nocargo/nix"
ln -s "$(command -v git)" "$nocargo/git"

bare="nix --extra-experimental-features 'nix-command flakes' build .#default --json -L --out-link result"
with_cargo="$bin build"
without_cargo="env PATH=$nocargo $bin build"

if command -v hyperfine >/dev/null; then
  hyperfine --warmup 3 --runs "$runs" --export-json "$work/h.json" \
    -n "nix build" "$bare" -n "nixflash build" "$with_cargo" \
    -n "nixflash build, no cargo on PATH" "$without_cargo" >&2
  # Medians: on a shared machine a few slow runs move the means by more than the budget.
  means=$(sed -n 's/.*"median": *\([0-9.eE+-]*\).*/\1/p' "$work/h.json")
else
  means=""
  for cmd in "$bare" "$with_cargo" "$without_cargo"; do
    sh -c "$cmd" >/dev/null 2>&1
    start=$(date +%s%N)
    i=0
    while [ $i -lt "$runs" ]; do sh -c "$cmd" >/dev/null 2>&1; i=$((i + 1)); done
    end=$(date +%s%N)
    means="$means $(awk -v s="$start" -v e="$end" -v r="$runs" 'BEGIN { print (e - s) / r / 1e9 }')"
  done
fi
set -- $means
awk -v b="$1" -v c="$2" -v n="$3" 'BEGIN {
  printf "nix build:                         %.1f ms\n", b * 1000
  printf "nixflash build:                    %.1f ms (overhead %+.1f ms)\n", c * 1000, (c - b) * 1000
  printf "nixflash build, no cargo on PATH:  %.1f ms (overhead %+.1f ms)\n", n * 1000, (n - b) * 1000
  if (c - b > 0.02 || n - b > 0.02) { print "over the 20 ms budget"; exit 1 }
}'
