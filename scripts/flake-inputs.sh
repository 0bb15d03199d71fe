#!/usr/bin/env bash
# Makes a folder of flake input source trees for tests/flake_eval.rs, from local git mirrors,
# for machines that cannot reach GitHub:
#
#   scripts/flake-inputs.sh OUT NIXPKGS_GIT CRANE_GIT RUST_OVERLAY_GIT
#   NIXFLASH_TEST_FLAKE_INPUTS=OUT cargo test --test flake_eval
#
# Each *_GIT is a git directory (bare or not), optionally followed by @REV (default HEAD).
# OUT gets nixpkgs/, crane/ and rust-overlay/: the files of that commit, which is what GitHub's
# tarball (and so a github: flake input) holds when the repository sets no export-ignore. A mirror
# may lack the content of its largest files (the neg-serg/nixpkgs-slim snapshot lacks three
# files over 4 MiB): those are left out with a warning, and the tree is then good for evaluating
# what does not read them, not for computing a lock's narHash. A tree already extracted from the
# same commit is kept, so running it again is cheap. OUT/<name>.rev records the commit.
#
# Example with the mirrors that /work/.mirror holds:
#   scripts/flake-inputs.sh /work/flake-inputs \
#     /work/.mirror/neg-serg+nixpkgs-slim/repo \
#     /work/.mirror/ipetkov+crane/repo \
#     /work/.mirror/oxalica+rust-overlay/repo
set -euo pipefail

usage() {
  sed -n '2,/^set -euo pipefail/p' "$0" | sed -n 's/^# \{0,1\}//p' >&2
  exit 2
}
[[ $# -eq 4 ]] || usage
out=$1
shift
mkdir -p "$out"

extract() { # name gitdir[@rev]
  local name=$1 spec=$2 gitdir rev commit
  gitdir=${spec%@*}
  rev=HEAD
  [[ "$spec" == *@* ]] && rev=${spec##*@}
  if ! commit=$(git --git-dir="$gitdir" rev-parse --verify --quiet "$rev^{commit}"); then
    echo "error: $gitdir has no commit $rev" >&2
    echo "hint: pass a git directory (for a bare mirror, the repository itself; else its .git)" >&2
    exit 1
  fi
  if [[ -d "$out/$name" && "$(cat "$out/$name.rev" 2>/dev/null)" == "$commit" ]]; then
    echo "$name: $out/$name is already $commit"
    return
  fi
  rm -rf "$out/$name" "$out/$name.rev" "$out/$name.part"
  mkdir "$out/$name.part"
  # A private index of the commit, minus the files whose content the mirror does not hold.
  local index missing
  index=$(mktemp)
  GIT_INDEX_FILE=$index git --git-dir="$gitdir" read-tree "$commit"
  missing=$(git --git-dir="$gitdir" ls-tree -r "$commit" |
    awk '$2 == "blob" { print $3 }' |
    git --git-dir="$gitdir" cat-file --batch-check='%(objectname) %(objecttype)' |
    awk '$2 == "missing" { print $1 }')
  if [[ -n "$missing" ]]; then
    git --git-dir="$gitdir" ls-tree -r "$commit" | grep -F -f <(echo "$missing") | cut -f2 |
      while IFS= read -r path; do
        echo "warning: $name: $gitdir lacks the content of $path: left out" >&2
        GIT_INDEX_FILE=$index git --git-dir="$gitdir" update-index --force-remove -- "$path"
      done
  fi
  GIT_INDEX_FILE=$index git --git-dir="$gitdir" --work-tree="$out/$name.part" checkout-index -a -f
  rm -f "$index"
  mv "$out/$name.part" "$out/$name"
  echo "$commit" >"$out/$name.rev"
  echo "$name: $commit -> $out/$name"
}

extract nixpkgs "$1"
extract crane "$2"
extract rust-overlay "$3"
