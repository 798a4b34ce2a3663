#!/usr/bin/env bash
# A throwaway, self-contained Dovecot for the benchmarks (Dovecot 2.3, run as root).
#
# Library (what the benchmark scripts do):
#   source bench/dovecot.sh
#   dc_init DIR [NUSERS]   # config in DIR, free 127.0.0.1 port, users bench + bench1..benchNUSERS
#   dc_start / dc_stop     # start (waits until LOGIN works) / stop (waits until gone)
#   dc_load CORPUS_DIR     # *.eml -> ~bench/Maildir/cur, index, create Triage/*, snapshot
#   dc_restore             # stopped server: put the pristine snapshot back
#   dc_doveadm ARGS...     # doveadm against this instance
# After dc_init: DC_DIR, DC_PORT, DC_CONF are set; password of every user: $DC_PASSWORD.
#
# Command line (for poking at it by hand; DIR must be empty or absent at `init`):
#   bench/dovecot.sh init DIR [NUSERS]; bench/dovecot.sh load DIR [CORPUS]
#   bench/dovecot.sh start DIR | stop DIR | restore DIR | status DIR
#   (then e.g. `doveadm -c DIR/dovecot.conf mailbox status -u bench messages '*'`;
#   remove DIR yourself when done)
#
# Nothing from /etc/dovecot is read; all sockets, state, logs and mail live in DIR.
# Mail belongs to the numeric uid/gid 5000 (Dovecot refuses mail access as root).
set -euo pipefail

DC_UID=5000
DC_PASSWORD=benchpw
DC_FOLDERS=(Triage/URGENT Triage/BILLING Triage/SALES Triage/SUPPORT)

dc_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# dc_init DIR [NUSERS]: writes DIR/dovecot.conf and DIR/users, picks a free port.
dc_init() {
  DC_DIR=$(realpath -m "$1")
  local nusers=${2:-} i
  mkdir -p "$DC_DIR"/{run,state,log,mail,pristine}
  if [ -z "$nusers" ]; then nusers=$(cat "$DC_DIR/nusers" 2>/dev/null || echo 0); fi
  echo "$nusers" >"$DC_DIR/nusers"
  chown "$DC_UID:$DC_UID" "$DC_DIR/mail"
  chmod 755 "$DC_DIR"
  DC_CONF=$DC_DIR/dovecot.conf
  if [ -f "$DC_DIR/port" ]; then DC_PORT=$(cat "$DC_DIR/port"); else DC_PORT=$(dc_free_port); fi
  echo "$DC_PORT" >"$DC_DIR/port"
  {
    echo "bench:{PLAIN}$DC_PASSWORD::::::"
    for ((i = 1; i <= nusers; i++)); do echo "bench$i:{PLAIN}$DC_PASSWORD::::::"; done
  } >"$DC_DIR/users"
  cat >"$DC_CONF" <<EOF
# Throwaway Dovecot for mailtriage's benchmarks (written by bench/dovecot.sh).
instance_name = mtbench-$DC_PORT
base_dir = $DC_DIR/run
state_dir = $DC_DIR/state
log_path = $DC_DIR/log/dovecot.log
info_log_path = $DC_DIR/log/dovecot.log
debug_log_path = $DC_DIR/log/dovecot.log

protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
login_trusted_networks = 127.0.0.0/8
# Speed: failed logins answer at once and earn no per-IP penalty.
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = $DC_UID
last_valid_uid = $DC_UID
first_valid_gid = $DC_UID
last_valid_gid = $DC_UID
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DC_DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DC_DIR/users
  default_fields = uid=$DC_UID gid=$DC_UID home=$DC_DIR/mail/%u
}

mail_location = maildir:~/Maildir
# Speed: a benchmark box does not need its mail on disk after a power cut.
mail_fsync = never
namespace inbox {
  inbox = yes
  separator = /
  prefix =
}

# Limits for the 200-account IDLE test (all clients come from 127.0.0.1).
mail_max_userip_connections = 100
default_process_limit = 1000
default_client_limit = 4000
service imap {
  process_limit = 1024
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DC_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
  # Dovecot's auth process (user dovecot) must be able to read the users file.
  if ! runuser -u dovecot -- test -r "$DC_DIR/users"; then
    echo "dc_init: user dovecot cannot read $DC_DIR/users (make every parent directory world-searchable, e.g. chmod 755)" >&2
    return 1
  fi
}

dc_alive() { # dc_alive PID: running (a zombie waiting to be reaped counts as gone)
  local st
  st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

dc_pid() { # PID of a running master, or nothing
  local p
  p=$(cat "$DC_DIR/run/master.pid" 2>/dev/null) || return 0
  if dc_alive "$p"; then echo "$p"; fi
}

dc_start() {
  if [ -n "$(dc_pid)" ]; then return 0; fi
  # A stale socket from an earlier instance can stall auth for seconds: start clean.
  rm -rf "$DC_DIR/run" && mkdir -p "$DC_DIR/run"
  # The master forks into the background: it must not keep the caller's stdout/stderr
  # open (a caller reading them until EOF would wait forever).
  if ! (ulimit -n "$(ulimit -Hn)" && dovecot -c "$DC_CONF" </dev/null >"$DC_DIR/log/start.log" 2>&1); then
    cat "$DC_DIR/log/start.log" >&2
    return 1
  fi
  python3 - "$DC_PORT" "$DC_PASSWORD" <<'EOF'
import imaplib, sys, time
port, pw = int(sys.argv[1]), sys.argv[2]
end = time.monotonic() + 15
while True:
    try:
        c = imaplib.IMAP4("127.0.0.1", port)
        c.login("bench", pw)
        c.logout()
        break
    except Exception as e:
        if time.monotonic() > end:
            sys.exit(f"dovecot did not accept a login within 15 s: {e}")
        time.sleep(0.01)
EOF
}

dc_stop() {
  local p i
  p=$(dc_pid)
  [ -n "$p" ] || return 0
  kill "$p" 2>/dev/null || true
  for ((i = 0; i < 1000; i++)); do
    dc_alive "$p" || return 0
    sleep 0.01
  done
  echo "dovecot (pid $p) did not stop within 10 s; killing it" >&2
  kill -KILL "$p" 2>/dev/null || true
}

dc_doveadm() { doveadm -c "$DC_CONF" "$@"; }

# dc_load CORPUS_DIR: bench's INBOX = every *.eml of CORPUS_DIR, as Maildir files.
dc_load() {
  local corpus=$1 home=$DC_DIR/mail/bench
  dc_stop
  rm -rf "$home" "$DC_DIR/pristine/bench"
  mkdir -p "$home/Maildir"/{cur,new,tmp}
  python3 - "$corpus" "$home/Maildir/cur" <<'EOF'
import os, sys
from pathlib import Path
src, cur = Path(sys.argv[1]), Path(sys.argv[2])
files = sorted(src.glob("*.eml"))
if not files:
    sys.exit(f"no *.eml in {src} (run bench/gen_corpus.py)")
t0 = 1700000000
for i, f in enumerate(files, 1):
    data = f.read_bytes()
    # <time>.M<usec>P<pid>.<host>,S=<size>,W=<size with CRLF line ends>:2, -- the name
    # Dovecot gives a message it delivers (LMTP, LDA, APPEND, `doveadm save`), so that
    # RFC822.SIZE costs the server what it costs on a real mailbox: nothing. (No flags:
    # unread, like new mail.)
    vsize = len(data) + data.count(b"\n") - data.count(b"\r\n")
    p = cur / f"{t0 + i}.M{i}P1.bench,S={len(data)},W={vsize}:2,"
    p.write_bytes(data)
    os.utime(p, (t0 + i, t0 + i))  # INTERNALDATE, in corpus order
print(f"{len(files)} messages written to {cur}")
EOF
  chown -R "$DC_UID:$DC_UID" "$home"
  dc_start
  dc_doveadm mailbox status -u bench messages INBOX >/dev/null # builds the index
  local f
  for f in "${DC_FOLDERS[@]}"; do dc_doveadm mailbox create -u bench "$f"; done
  dc_stop
  cp -a "$home" "$DC_DIR/pristine/bench"
}

# dc_restore: the pristine snapshot replaces bench's mail (server must be stopped).
dc_restore() {
  if [ -n "$(dc_pid)" ]; then
    echo "dc_restore: stop dovecot first" >&2
    return 1
  fi
  rm -rf "$DC_DIR/mail/bench"
  cp -a "$DC_DIR/pristine/bench" "$DC_DIR/mail/bench"
}

# dc_counts [USER]: "INBOX 123" lines for every folder.
dc_counts() {
  dc_doveadm -f flow mailbox status -u "${1:-bench}" messages '*' |
    sed -E "s/^(mailbox=)?(.*) messages=([0-9]+)$/\2 \3/" | sort
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  cmd=${1:-}
  dir=${2:-}
  [ -n "$cmd" ] && [ -n "$dir" ] || {
    sed -n '2,20p' "$0"
    exit 2
  }
  case $cmd in
  init)
    dc_init "$dir" "${3:-}"
    echo "dovecot bed in $DC_DIR, port $DC_PORT"
    ;;
  load)
    dc_init "$dir"
    dc_load "${3:-$(dirname "$0")/corpus/bench10k}"
    ;;
  start)
    dc_init "$dir"
    dc_start
    echo "listening on 127.0.0.1:$DC_PORT"
    ;;
  stop)
    dc_init "$dir"
    dc_stop
    ;;
  restore)
    dc_init "$dir"
    dc_stop
    dc_restore
    ;;
  status)
    dc_init "$dir"
    dc_counts
    ;;
  *)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
  esac
fi
