#!/usr/bin/env bash
# Wall time of `nixflash new` (render, write, the repository, rename), target (issue 22): 12 ms
# with git. The repository is written without git where that gives what git would (src/git/repo.rs).
#   bench/new.sh            # needs hyperfine (apt-get install hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=$PWD/target/release/nixflash
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export XDG_CONFIG_HOME=$work/cfg
for board in uno esp32c3; do
  hyperfine -N --warmup 5 --runs 50 \
    --prepare "rm -rf $work/blinky" \
    "$bin new $work/blinky --board $board" \
    "$bin new $work/blinky --board $board --no-git"
done
