#!/usr/bin/env bash
# Unpacks Debian's Cyrus IMAP 3.6 for the integration tests' server matrix, without
# installing it: cyrus-imapd conflicts with dovecot-imapd, so its packages are
# downloaded (`apt-get download`) and extracted (`dpkg-deb -x`) into a directory of
# the build tree, and the test harness runs the binaries from there with their own
# configuration (tests/it/harness/cyrus.rs).
#
#   bash scripts/cyrus-testbed.sh [DIR]     # default: target/testbed/cyrus
#
# Idempotent: a complete unpack (marked by DIR/.complete) is left alone. Prints DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-target/testbed/cyrus}"
if [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi
# Cyrus' own packages and the libraries of theirs a Debian 12 machine lacks;
# sasl2-bin for saslpasswd2 (the test users live in a sasldb of the test bed).
pkgs=(cyrus-imapd cyrus-common libclamav12 libical3 libxapian30 libzephyr4 libpcre3 sasl2-bin)
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# The sasldb plugin is what the test bed authenticates with.
if [ ! -e /usr/lib/x86_64-linux-gnu/sasl2/libsasldb.so.2 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends libsasl2-modules-db >/dev/null
fi
debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
chmod 0777 "$debs"   # apt's sandbox user writes the downloads
if ! (cd "$debs" && apt-get download -qq "${pkgs[@]}" >/dev/null 2>&1); then
  $SUDO apt-get update -qq
  (cd "$debs" && apt-get download -qq "${pkgs[@]}" >/dev/null)
fi
rm -rf "$dir"
mkdir -p "$dir/pkg"
for d in "$debs"/*.deb; do
  dpkg-deb -x "$d" "$dir/pkg"
done
touch "$dir/.complete"
echo "$dir"
