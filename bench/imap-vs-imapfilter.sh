#!/usr/bin/env bash
# mailtriage vs imapfilter: the same 10,000 messages, the same rules, the same Dovecot.
#
#   RUNS=3 MAILTRIAGE_BIN=target/release/mailtriage bench/imap-vs-imapfilter.sh
#
# Per run (the tools alternate, RUNS runs each): restore the pristine, indexed INBOX,
# start a fresh Dovecot, run the tool under /usr/bin/time -v (wall time, client CPU,
# max RSS), read the CPU the Dovecot processes used (cutime+cstime of the master once
# the session's imap process is reaped), then check the mailbox with doveadm:
#   * imapfilter must give what a raw-body substring search gives
#     (bench/corpus/bench10k.expected.json, written by gen_corpus.py);
#   * mailtriage must give exactly what `mailtriage triage` decides offline for the same
#     files (the daemon over IMAP = the pure core over .eml files);
#   * no message lost or duplicated (10,000 in all), none marked \Seen or \Deleted.
# A failed check or a non-zero exit stops the benchmark (that is a bug to report).
#
# mailtriage: `mailtriage run --once`, fresh state, backfill: all, bench/profiles/bench.yaml.
# imapfilter: match_body() with one PCRE per rule over the messages no earlier rule took,
# move_messages() (imapfilter 2.8: UID COPY + STORE \Deleted + EXPUNGE).
#
# Output: a table on stdout; everything (per-run numbers, logs) under bench/out/.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
RUNS=${RUNS:-3}
MAILTRIAGE_BIN=${MAILTRIAGE_BIN:-$ROOT/target/release/mailtriage}
CORPUS=$HERE/corpus/bench10k
PROFILE=$HERE/profiles/bench.yaml
OUT=$HERE/out/imap-vs-imapfilter-$(date -u +%Y%m%dT%H%M%SZ)

if [ ! -x "$MAILTRIAGE_BIN" ]; then
  echo "building $MAILTRIAGE_BIN" >&2
  (cd "$ROOT" && cargo build --release)
fi
MAILTRIAGE_BIN=$(realpath "$MAILTRIAGE_BIN")
[ -f "$CORPUS.expected.json" ] || python3 "$HERE/gen_corpus.py"

# shellcheck source=bench/dovecot.sh
source "$HERE/dovecot.sh"
WORK=$(mktemp -d /tmp/mailtriage-bench.XXXXXX)
chmod 755 "$WORK" # Dovecot's unprivileged processes read files below it
cleanup() {
  dc_stop || true
  cp "$WORK/dovecot/log/dovecot.log" "$OUT/" 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK (KEEP=1)" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"

echo "== setup: Dovecot in $WORK, corpus $CORPUS"
dc_init "$WORK/dovecot"
dc_load "$CORPUS"

# What each tool must produce.
"$MAILTRIAGE_BIN" check "$PROFILE" >/dev/null
"$MAILTRIAGE_BIN" triage "$CORPUS" --profile "$PROFILE" --format json \
  >"$OUT/offline-triage.jsonl" 2>"$OUT/offline-triage.stderr"
python3 - "$CORPUS.expected.json" "$OUT/offline-triage.jsonl" >"$OUT/expected.txt" <<'EOF'
import json, sys
imf = json.load(open(sys.argv[1]))["imapfilter_match_body_expected"]
for k, v in imf.items():
    print("imapfilter", "INBOX" if k == "INBOX" else "Triage/" + k, v)
counts = {}
for line in open(sys.argv[2]):
    if line.startswith("{"):
        f = json.loads(line)["folder"] or "INBOX"
        counts[f] = counts.get(f, 0) + 1
for k in ["Triage/URGENT", "Triage/BILLING", "Triage/SALES", "Triage/SUPPORT", "INBOX"]:
    print("mailtriage", k, counts.get(k, 0))
EOF

# Tool configurations.
mkdir -p "$WORK/imapfilter-home/.imapfilter" "$WORK/mailtriage"
cat >"$WORK/imapfilter-home/.imapfilter/config.lua" <<EOF
-- Same rules as bench/profiles/bench.yaml, first match wins.
options.timeout = 300
options.create = false
options.subscribe = false
options.info = false
local account = IMAP {
  server = '127.0.0.1',
  port = $DC_PORT,
  username = 'bench',
  password = '$DC_PASSWORD',
}
local rules = {
  { 'Triage/URGENT',  '(?i)(urgent|asap|escalate|outage|lawyer)' },
  { 'Triage/BILLING', '(?i)(invoice|refund|payment|overdue|chargeback)' },
  { 'Triage/SALES',   '(?i)(quote|pricing|discount|demo|trial)' },
  { 'Triage/SUPPORT', '(?i)(broken|bug|error|crash|password)' },
}
local rest = account.INBOX:select_all()
for _, rule in ipairs(rules) do
  local hits = rest:match_body(rule[2])
  hits:move_messages(account[rule[1]])
  rest = rest - hits
end
EOF
cat >"$WORK/mailtriage/mailtriage.yaml" <<EOF
state: $WORK/mailtriage/state.db
log: {level: warn}
accounts:
  - name: bench
    profile: $PROFILE
    imap: {host: 127.0.0.1, port: $DC_PORT, tls: none, user: bench, password: {env: BENCH_PW}}
    backfill: all
EOF
cp "$WORK/imapfilter-home/.imapfilter/config.lua" "$WORK/mailtriage/mailtriage.yaml" "$OUT/"

CLK_TCK=$(getconf CLK_TCK)
# CPU seconds of the Dovecot master's reaped children (the imap/login processes).
server_cpu() {
  local pid=$1 i
  for ((i = 0; i < 500; i++)); do # wait until the session's imap process is reaped
    pgrep -P "$pid" -x imap >/dev/null || break
    sleep 0.01
  done
  awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($14 + $15) / t }' "/proc/$pid/stat"
}

run_one() { # run_one TOOL N
  local tool=$1 n=$2 log=$OUT/$1.$2.log tfile=$OUT/$1.$2.time master rc=0 scpu
  dc_stop
  dc_restore
  rm -f "$WORK"/mailtriage/state.db*
  dc_start
  master=$(dc_pid)
  case $tool in
  mailtriage)
    BENCH_PW=$DC_PASSWORD /usr/bin/time -v -o "$tfile" \
      "$MAILTRIAGE_BIN" run --config "$WORK/mailtriage/mailtriage.yaml" --once >"$log" 2>&1 || rc=$?
    ;;
  imapfilter)
    HOME=$WORK/imapfilter-home /usr/bin/time -v -o "$tfile" \
      imapfilter -c "$WORK/imapfilter-home/.imapfilter/config.lua" >"$log" 2>&1 || rc=$?
    ;;
  esac
  scpu=$(server_cpu "$master")
  if [ "$rc" != 0 ]; then
    echo "!! $tool run $n exited with $rc; log $log:" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  dc_counts >"$OUT/$tool.$n.counts"
  local seen deleted
  seen=$(dc_doveadm search -u bench mailbox '*' SEEN | wc -l)
  deleted=$(dc_doveadm search -u bench mailbox '*' DELETED | wc -l)
  python3 - "$tool" "$n" "$tfile" "$OUT/$tool.$n.counts" "$OUT/expected.txt" "$scpu" "$seen" "$deleted" \
    >>"$OUT/runs.tsv" <<'EOF'
import re, sys
tool, n, tfile, cfile, efile, scpu, seen, deleted = sys.argv[1:]
t = open(tfile).read()
def field(name):
    return re.search(re.escape(name) + r": (.*)", t).group(1).strip()
h, m, s = ([0, 0] + field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"))[-3:]
wall = int(h) * 3600 + int(m) * 60 + float(s)
cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
rss = int(field("Maximum resident set size (kbytes)")) / 1024
got = dict(l.split() for l in open(cfile))
exp = {k: v for t_, k, v in (l.split() for l in open(efile)) if t_ == tool}
problems = []
if got != exp:
    problems.append(f"folders {got} != expected {exp}")
if sum(map(int, got.values())) != 10000:
    problems.append(f"{sum(map(int, got.values()))} messages in all, not 10000")
if seen != "0":
    problems.append(f"{seen} messages \\Seen")
if deleted != "0":
    problems.append(f"{deleted} messages \\Deleted")
print(f"{tool}\t{n}\t{wall:.2f}\t{cpu:.2f}\t{rss:.1f}\t{scpu}\t{'ok' if not problems else '; '.join(problems)}")
EOF
  tail -1 "$OUT/runs.tsv" | awk -F'\t' '{ printf "   %-10s run %s: wall %6.2f s  client CPU %5.2f s  max RSS %6.1f MiB  server CPU %5.2f s  check: %s\n", $1, $2, $3, $4, $5, $6, $7 }'
  if ! tail -1 "$OUT/runs.tsv" | grep -q $'\tok$'; then
    echo "!! $tool run $n: wrong result (see $OUT/$tool.$n.counts and $log)" >&2
    exit 1
  fi
}

printf 'tool\trun\twall_s\tclient_cpu_s\tmax_rss_mib\tserver_cpu_s\tcheck\n' >"$OUT/runs.tsv"
echo "== $RUNS runs per tool, alternating (binary: $MAILTRIAGE_BIN)"
echo "   $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/machine.txt"
for ((i = 1; i <= RUNS; i++)); do
  run_one mailtriage "$i"
  run_one imapfilter "$i"
done

echo "   load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo
python3 - "$OUT/runs.tsv" "$OUT/expected.txt" <<'EOF' | tee "$OUT/summary.txt"
import statistics as st, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
by = {}
for r in rows:
    by.setdefault(r[0], []).append(r)
def col(tool, i):
    return [float(r[i]) for r in by[tool]]
print(f"{'tool':<11} {'runs':>4} {'median wall s':>13} {'min–max wall s':>15} {'median client CPU s':>19} "
      f"{'median max RSS MiB':>18} {'median server CPU s':>19}  result")
for tool in ("mailtriage", "imapfilter"):
    w = col(tool, 2)
    print(f"{tool:<11} {len(w):>4} {st.median(w):>13.2f} {f'{min(w):.2f}–{max(w):.2f}':>15} "
          f"{st.median(col(tool, 3)):>19.2f} {st.median(col(tool, 4)):>18.1f} "
          f"{st.median(col(tool, 5)):>19.2f}  verified")
ratio = st.median(col("imapfilter", 2)) / st.median(col("mailtriage", 2))
ratio_min = min(col("imapfilter", 2)) / min(col("mailtriage", 2))
rss = st.median(col("mailtriage", 4))
print()
print(f"imapfilter_wall / mailtriage_wall: {ratio:.2f}x (medians), {ratio_min:.2f}x (minima)"
      f"   target >= 5x: {'met' if ratio >= 5 else 'NOT met'}")
print(f"mailtriage max RSS: {rss:.1f} MiB   target <= 40 MB: {'met' if rss * 1.048576 <= 40 else 'NOT met'}")
print()
exp = {}
for l in open(sys.argv[2]):
    t, k, v = l.split()
    exp.setdefault(k, {})[t] = v
print(f"{'folder':<16} {'mailtriage':>10} {'imapfilter':>10}   (identical in every run)")
for k in ["Triage/URGENT", "Triage/BILLING", "Triage/SALES", "Triage/SUPPORT", "INBOX"]:
    print(f"{k:<16} {exp[k]['mailtriage']:>10} {exp[k]['imapfilter']:>10}")
EOF
echo
echo "== why the folder counts differ (offline analysis of the same decisions)"
(cd / && python3 "$HERE/explain_diff.py" "$OUT/offline-triage.jsonl") | tee "$OUT/diff.txt"
echo
echo "results: $OUT"
