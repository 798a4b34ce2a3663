#!/usr/bin/env bash
# What the IMAP commands of a backlog cost the server, without any client of ours:
# Python's imaplib against the benchmark Dovecot (bench/dovecot.sh) and corpus.
#
#   bench/server-costs.sh
#
# For each FETCH item list (several, `;`-separated, run one after the other): restore the pristine, freshly indexed INBOX, start Dovecot,
# log in, and time 20 `UID FETCH a:b (...)` of 500 UIDs each (what mailtriage does per
# batch). Then, on one more fresh INBOX: `UID MOVE` of 800 messages into each of the 4
# benchmark folders, and of 10 messages 4 times (the cost per command versus per
# message). Times include imaplib reading the answers, so they overstate the server a
# little, the same for every line.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CORPUS=$HERE/corpus/bench10k
[ -f "$CORPUS.expected.json" ] || python3 "$HERE/gen_corpus.py"

# shellcheck source=bench/dovecot.sh
source "$HERE/dovecot.sh"
WORK=$(mktemp -d /tmp/mailtriage-costs.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  dc_stop || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dc_init "$WORK/dovecot" >/dev/null
dc_load "$CORPUS" >/dev/null

fresh() {
  dc_stop >/dev/null 2>&1 || true
  dc_restore >/dev/null
  sync
  dc_start >/dev/null
}

probe() { # probe MODE [QUERY]
  python3 - "$DC_PORT" "$DC_PASSWORD" "$@" <<'EOF'
import imaplib, sys, time
port, password, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = imaplib.IMAP4("127.0.0.1", port)
m.login("bench", password)
m.select("INBOX")
if mode == "fetch":
    queries = sys.argv[4].split(";")
    took = 0.0
    for i in range(20):
        first = i * 500 + 1
        t = time.perf_counter()
        for q in queries:
            m.uid("FETCH", f"{first}:{first + 499}", q)
        took += time.perf_counter() - t
    label = " then ".join(queries)
    print(f"{label:<60} {took * 1000:7.0f} ms for 10,000 messages")
else:
    uids = list(range(1, 10001, 3))
    for k, folder in enumerate(["URGENT", "BILLING", "SALES", "SUPPORT"]):
        part = ",".join(map(str, uids[k * 800:(k + 1) * 800]))
        t = time.perf_counter()
        m.uid("MOVE", part, f"Triage/{folder}")
        print(f"UID MOVE of 800 messages into Triage/{folder:<8} {(time.perf_counter() - t) * 1000:7.1f} ms")
    for k in range(4):
        part = ",".join(map(str, range(2 + k * 10, 12 + k * 10)))
        t = time.perf_counter()
        m.uid("MOVE", part, "Triage/SALES")
        print(f"UID MOVE of 10 messages into Triage/SALES     {(time.perf_counter() - t) * 1000:7.1f} ms")
m.logout()
EOF
}

# Per batch, mailtriage asks for sizes first, then the bodies of the messages within
# max_scan_bytes (all of them here); the last line is the same data in one command.
echo "== FETCH, 20 x 500 UIDs, each line on a freshly restored INBOX"
for q in "(UID FLAGS)" \
  "(UID RFC822.SIZE INTERNALDATE FLAGS)" \
  "(UID BODY.PEEK[])" \
  "(UID RFC822.SIZE INTERNALDATE FLAGS);(UID BODY.PEEK[])" \
  "(UID RFC822.SIZE INTERNALDATE FLAGS BODY.PEEK[])"; do
  fresh
  probe fetch "$q"
done
echo "== MOVE"
fresh
probe move
