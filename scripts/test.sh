#!/usr/bin/env bash
# The one test command (README "Tests"): installs what the tests need on a fresh machine,
# then checks formatting, lints, and runs every test. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Integration tests talk to a real Dovecot started by the harness.
command -v dovecot >/dev/null 2>&1 || need_apt+=(dovecot-core dovecot-imapd)
# SMTP tests (alerts, acknowledgements, digests) talk to a real aiosmtpd on 127.0.0.1.
# (Debian's python3, as the harness uses: a pyenv/venv python3 would not see the package.)
py=/usr/bin/python3; [ -x "$py" ] || py=python3
"$py" -c 'import aiosmtpd' >/dev/null 2>&1 || need_apt+=(python3-aiosmtpd)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The server matrix also runs Cyrus IMAP 3.6, unpacked (not installed: it conflicts
# with dovecot-imapd) into target/testbed/cyrus.
echo "==> Cyrus IMAP for the server matrix: $(bash scripts/cyrus-testbed.sh)"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --locked --all-targets
echo "==> all tests passed"
