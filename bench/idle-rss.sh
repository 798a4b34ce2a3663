#!/usr/bin/env bash
# Memory of the mailtriage daemon while it idles on 1 and on 200 IMAP accounts.
#
#   ACCOUNTS="1 200" MAILTRIAGE_BIN=target/release/mailtriage bench/idle-rss.sh
#
# One Dovecot with users bench1..benchMAX (empty mailboxes). For each N in ACCOUNTS:
# a fresh state, a config with N accounts (bench1..benchN, all `watch: idle`,
# `backfill: none`, bench/profiles/bench.yaml, `log: {level: info}`); start
# `mailtriage run`, wait until the log holds a "connected" line for every account and
# the server counts N imap sessions, give it SETTLE seconds (default 3) to enter IDLE,
# then read VmRSS and VmHWM from /proc/PID/status. Then SIGTERM: it must exit 0.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ACCOUNTS=${ACCOUNTS:-"1 200"}
SETTLE=${SETTLE:-3}
MAILTRIAGE_BIN=${MAILTRIAGE_BIN:-$ROOT/target/release/mailtriage}
PROFILE=$HERE/profiles/bench.yaml
OUT=$HERE/out/idle-rss-$(date -u +%Y%m%dT%H%M%SZ)

if [ ! -x "$MAILTRIAGE_BIN" ]; then
  echo "building $MAILTRIAGE_BIN" >&2
  (cd "$ROOT" && cargo build --release)
fi
MAILTRIAGE_BIN=$(realpath "$MAILTRIAGE_BIN")

# shellcheck source=bench/dovecot.sh
source "$HERE/dovecot.sh"
WORK=$(mktemp -d /tmp/mailtriage-idle.XXXXXX)
chmod 755 "$WORK" # Dovecot's unprivileged processes read files below it
DAEMON=
cleanup() {
  if [ -n "$DAEMON" ] && kill -0 "$DAEMON" 2>/dev/null; then
    kill -KILL "$DAEMON" 2>/dev/null || true
    wait "$DAEMON" 2>/dev/null || true
  fi
  dc_stop || true
  cp "$WORK/dovecot/log/dovecot.log" "$OUT/" 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK (KEEP=1)" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$OUT"

sessions() { # imap processes of the Dovecot master (one per logged-in session)
  pgrep -P "$master" -x imap | wc -l || true # pgrep fails when there are none
}

max=0
for n in $ACCOUNTS; do ((n > max)) && max=$n; done
dc_init "$WORK/dovecot" "$max"
dc_start
master=$(dc_pid)

echo "== idle memory, accounts: $ACCOUNTS (binary: $MAILTRIAGE_BIN; load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf 'accounts\tconnect_s\tvmrss_mib\tvmhwm_mib\timap_sessions\texit_code\tstop_s\n' >"$OUT/results.tsv"
for n in $ACCOUNTS; do
  dir=$WORK/mt-$n
  mkdir -p "$dir"
  {
    echo "state: $dir/state.db"
    echo "log: {level: info}"
    echo "accounts:"
    for ((i = 1; i <= n; i++)); do
      cat <<EOF
  - name: bench$i
    profile: $PROFILE
    imap: {host: 127.0.0.1, port: $DC_PORT, tls: none, user: bench$i, password: {env: BENCH_PW}}
    backfill: none
    watch: idle
EOF
    done
  } >"$dir/mailtriage.yaml"
  log=$OUT/daemon-$n.log
  : >"$log" # exists before the daemon (started in the background) opens it
  t0=$(date +%s.%N)
  BENCH_PW=$DC_PASSWORD "$MAILTRIAGE_BIN" run --config "$dir/mailtriage.yaml" >"$log" 2>&1 &
  DAEMON=$!
  # every account connected (one INBOX each), and the server sees every session
  for ((i = 0; ; i++)); do
    # accounts with an info line "connected" (whatever the span prefix), each counted once
    c=$(grep -E ' INFO .*\bconnected account=' "$log" | grep -oE 'account=[^ ]+' | sort -u | wc -l || true)
    s=$(sessions)
    if [ "$c" -ge "$n" ] && [ "$s" -ge "$n" ]; then break; fi
    if ! kill -0 "$DAEMON" 2>/dev/null; then
      echo "!! the daemon exited while connecting ($n accounts); log: $log" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    if ((i > 6000)); then
      echo "!! after 60 s only $c of $n accounts connected ($s imap sessions); log: $log" >&2
      exit 1
    fi
    sleep 0.01
  done
  t1=$(date +%s.%N)
  connect_s=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
  sleep "$SETTLE"
  rss=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$DAEMON/status")
  hwm=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$DAEMON/status")
  nsess=$(sessions)
  warnings=$(grep -cE ' (WARN|ERROR) ' "$log" || true)
  t2=$(date +%s.%N)
  kill -TERM "$DAEMON"
  rc=0
  wait "$DAEMON" || rc=$?
  DAEMON=
  stop_s=$(awk -v a="$(date +%s.%N)" -v b="$t2" 'BEGIN { printf "%.2f", a - b }')
  printf '%s\t%.2f\t%s\t%s\t%s\t%s\t%.2f\n' "$n" "$connect_s" "$rss" "$hwm" "$nsess" "$rc" "$stop_s" >>"$OUT/results.tsv"
  printf '   %3d account(s): all connected after %.2f s; VmRSS %s MiB, VmHWM %s MiB; %s imap sessions; %s warnings/errors logged; SIGTERM -> exit %s in %.2f s\n' \
    "$n" "$connect_s" "$rss" "$hwm" "$nsess" "$warnings" "$rc" "$stop_s"
  if [ "$rc" != 0 ]; then
    echo "!! the daemon exited with $rc after SIGTERM; log: $log" >&2
    exit 1
  fi
  # let the server reap the sessions before the next round
  for ((i = 0; i < 1000; i++)); do
    [ "$(sessions)" = 0 ] && break
    sleep 0.01
  done
done
echo
column -t -s $'\t' "$OUT/results.tsv"
dlog=$WORK/dovecot/log/dovecot.log
inotify=$(grep -c 'Inotify instance limit' "$dlog" || true)
other=$(grep -iE 'warning|error|fatal|panic' "$dlog" | grep -v 'Inotify instance limit' | grep -vc 'Killed with signal 15' || true)
echo "Dovecot log: $other warnings/errors besides the following:"
if [ "$inotify" -gt 0 ]; then
  echo "  $inotify sessions hit fs.inotify.max_user_instances ($(cat /proc/sys/fs/inotify/max_user_instances)) for the mail uid;"
  echo "  Dovecot checks those mailboxes every 30 s instead of at once. The daemon's memory does not"
  echo "  depend on it; raise the sysctl for a many-account latency test."
fi
echo "results: $OUT"
