#!/usr/bin/env python3
"""Filing latency of the mailtriage daemon with IMAP IDLE.

    MAILTRIAGE_BIN=target/release/mailtriage python3 bench/latency.py [--messages 500] [--delay-ms 50]

A fresh Dovecot with an empty INBOX; `mailtriage run` (daemon mode, watch: idle,
backfill: none, fresh state, bench/profiles/bench.yaml). Then, one message at a time
(each with one SALES keyword), with three IMAP connections of our own:

  A  APPENDs the message to INBOX; t0 = when the server's OK for the APPEND arrived;
  B  polls STATUS "Triage/SALES" (MESSAGES) every ~2 ms; t_filed = when the count rose;
  C  sits in IDLE on INBOX; t_notify = when its `* N EXISTS` for that APPEND arrived.

(a) APPEND->filed = t_filed - t0, what a user sees;
(b) (a) minus Dovecot's own IDLE notify delay for the same message (t_notify - t0):
    roughly mailtriage's share (wake-up, fetch, triage, record, MOVE). Dovecot delays
    IDLE notifications on purpose (about 0.5 s, NOTIFY_DELAY_MSECS in mailbox-watch.c),
    so (a) can never be much lower than that; C sees the same delay mailtriage's own
    IDLE session sees, but they are separate sessions, so (b) is an estimate.

Before each APPEND, C leaves and re-enters IDLE, so that, like mailtriage's session
(which re-enters IDLE after every sync), it has no notification of an earlier change
pending. The next message is appended only after the previous one was filed (plus a
100 ms pause). At the end: INBOX empty, every message filed exactly once and still unread,
then SIGTERM, and the daemon must exit 0 within 30 s. Anything else is reported as
a failure (exit 1) with the daemon's log.

--delay-ms N (N > 0): the daemon (only the daemon: A, B and C stay direct) reaches
Dovecot through bench/delay_relay.py, which delays every chunk N ms in each direction
(a hosted server: 2N ms per round trip) and counts what the daemon sends. Then the
report adds: what the daemon sent at connect (daemon start until it has been quiet for
1 s, i.e. settled in IDLE); round trips and command lines per message, counted from the
first measured message's APPEND until the daemon is quiet again after the last one was
filed (and, as well, only until the last one was filed), divided by the messages; the
commands per message by verb; round trips per message one by one (between consecutive
APPENDs, the last until quiet), so that rare extras (an IDLE timeout) show as such. The
relay's transcript (verbs and server lines, no bodies, no password) is relay.log in the
results directory. (b) then includes mailtriage's round trips: C's notify delay is
measured directly, without the relay.

Through the relay, the 100 ms pause is not always enough for the daemon to finish with
the previous message (the commands after its MOVE cost round trips too); a message that
arrives then is found by those commands (a NOOP's EXISTS, say), not by IDLE, and (b) no
longer measures the time beyond the IDLE delay. So before each APPEND the script also
waits until nothing has passed the relay for --settle-ms (default 4 x the delay): the
daemon is back in IDLE. --settle-ms 0 gives the plain 100 ms pacing.
"""

import argparse
import imaplib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in bench/
import gen_corpus  # noqa: E402
from delay_relay import Relay  # noqa: E402

SALES = dict(gen_corpus.RULES)["SALES"]
PW = "benchpw"


def dovecot(cmd, bed):
    subprocess.run([str(HERE / "dovecot.sh"), cmd, str(bed)], check=True,
                   stdout=subprocess.DEVNULL)


def login(port):
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login("bench", PW)
    return c


def message(i, gen):
    kw = SALES[i % len(SALES)]
    body = "\r\n".join([
        "Hello Brian,", "",
        gen.paragraph(), "",
        gen.sentence([kw]), "",
        "Best regards,", "Barbara",
    ])
    return (f"From: Barbara Campbell <barbara.campbell@pied-piper.example>\r\n"
            f"To: Brian Walker <brian.walker@northwind.example>\r\n"
            f"Subject: Latency probe {i}\r\n"
            f"Date: {datetime.now(timezone.utc).strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
            f"Message-ID: <latency-{i}-{os.getpid()}@bench.example>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n").encode()


class IdleWatcher(threading.Thread):
    """Connection C: IDLE on INBOX; a reader thread timestamps every line."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.c = login(port)
        self.c.select("INBOX")
        self.lines = []  # (perf_counter(), line)
        self.cv = threading.Condition()
        self.tag = 0
        self.start()
        self.idle()

    def run(self):
        while True:
            try:
                line = self.c.readline()
            except (OSError, ValueError):
                line = b""
            with self.cv:
                self.lines.append((time.perf_counter(), line))
                self.cv.notify_all()
            if not line:
                return

    def wait_for(self, pred, since, timeout=10):
        """Index of the first line from `since` on that satisfies pred."""
        with self.cv:
            end = time.perf_counter() + timeout
            i = since
            while True:
                while i < len(self.lines):
                    if not self.lines[i][1]:
                        raise RuntimeError("IDLE connection closed")
                    if pred(self.lines[i][1]):
                        return i
                    i += 1
                left = end - time.perf_counter()
                if left <= 0:
                    raise RuntimeError("no answer on the IDLE connection")
                self.cv.wait(left)

    def idle(self):
        self.tag += 1
        mark = len(self.lines)
        self.c.send(b"I%d IDLE\r\n" % self.tag)
        self.wait_for(lambda l: l.startswith(b"+"), mark)

    def done(self):
        mark = len(self.lines)
        self.c.send(b"DONE\r\n")
        tag = b"I%d " % self.tag
        self.wait_for(lambda l: l.startswith(tag), mark)

    def restart(self):
        """Leaves and re-enters IDLE (like mailtriage, which re-enters IDLE after each
        sync), so no notification timer of an earlier change is pending; returns the
        position from which to look for the next EXISTS."""
        self.done()
        self.idle()
        return len(self.lines)

    def exists_after(self, mark, timeout):
        try:
            i = self.wait_for(lambda l: l.startswith(b"* ") and l.rstrip().endswith(b" EXISTS"),
                              mark, timeout)
        except RuntimeError:
            return None
        return self.lines[i][0]

    def stop(self):
        try:
            self.done()
            self.c.logout()
        except Exception:
            pass
        self.join(5)


def pct(xs, p):
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))]


def vm(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) / 1024
    return out


def verbs_line(verbs):
    return ", ".join(f"{v} {n}" for v, n in sorted(verbs.items(), key=lambda x: (-x[1], x[0])))


def relay_report(a, settle, at_connect, snaps, filed_snaps, quiet, per_msg):
    """What the daemon sent through the relay: at connect, and per message."""
    n = a.messages
    c = at_connect["total"]
    w = Relay.diff(quiet, snaps[0])
    wf = Relay.diff(filed_snaps[-1], snaps[0])
    before = Counter()  # verbs from each APPEND until it was filed
    for s, f in zip(snaps, filed_snaps):
        before += Relay.diff(f, s)["verbs"]
    conns = sorted(quiet["connections"])
    rts = [p[0] for p in per_msg]
    rts_f = [p[2] for p in per_msg]
    out = [
        "",
        f"== the daemon through the relay, {a.delay_ms:g} ms each way; "
        + (f"each APPEND after {settle * 1e3:g} ms of quiet on the relay "
           if settle > 0 else "APPENDs without waiting for quiet on the relay ")
        + f"({len(conns)} connection{'s' if len(conns) != 1 else ''} in all)",
        f"at connect (start -> quiet in IDLE): {c['round_trips']} round trips, "
        f"{c['commands']} commands ({verbs_line(c['verbs'])}), "
        f"{c['bytes_c2s']} bytes up, {c['bytes_s2c']} down",
        f"per message ({n} messages, first APPEND -> quiet after the last filed): "
        f"{w['round_trips'] / n:.2f} round trips, {w['commands'] / n:.2f} commands, "
        f"{w['bytes_c2s'] / n:.0f} bytes up, {w['bytes_s2c'] / n:.0f} down",
        f"  (first APPEND -> last filed only: {wf['round_trips'] / n:.2f} round trips, "
        f"{wf['commands'] / n:.2f} commands)",
        f"  round trips of each message (APPEND to next APPEND): min {min(rts)}, "
        f"p50 {pct(rts, 50)}, p90 {pct(rts, 90)}, max {max(rts)}; "
        + ", ".join(f"{k}: {v}x" for k, v in sorted(Counter(rts).items())),
        f"  of them from the APPEND until it was filed: mean {statistics.mean(rts_f):.2f}, "
        f"min {min(rts_f)}, max {max(rts_f)} (the MOVE's answer, and what follows, come after)",
        f"{'commands by verb':<24} {'total':>7} {'per message':>12} {'until filed':>12} "
        f"{'after filed':>12}",
    ]
    for v, k in sorted(w["verbs"].items(), key=lambda x: (-x[1], x[0])):
        b = before[v]
        out.append(f"{v:<24} {k:>7} {k / n:>12.2f} {b / n:>12.2f} {(k - b) / n:>12.2f}")
    b = sum(before.values())
    out.append(f"{'all':<24} {w['commands']:>7} {w['commands'] / n:>12.2f} {b / n:>12.2f} "
               f"{(w['commands'] - b) / n:>12.2f}")
    return out


def main():
    ap = argparse.ArgumentParser(description="mailtriage filing latency with IDLE")
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=3, help="messages filed first, not counted")
    ap.add_argument("--timeout", type=float, default=30, help="seconds a message may take")
    ap.add_argument("--delay-ms", type=float, default=0,
                    help="the daemon connects through a relay that delays each direction by "
                         "this much and counts its round trips (0: direct, no relay)")
    ap.add_argument("--settle-ms", type=float, default=None,
                    help="with --delay-ms: before each APPEND, also wait until nothing has "
                         "passed the relay for this long, i.e. the daemon is back in IDLE "
                         "(default 4 x delay, at least 100; 0: no wait, mail may then "
                         "arrive while the daemon is still busy with the previous one)")
    a = ap.parse_args()

    binary = Path(os.environ.get("MAILTRIAGE_BIN", ROOT / "target" / "release" / "mailtriage"))
    if not binary.exists():
        print(f"building {binary}", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    binary = binary.resolve()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = HERE / "out" / f"latency-{stamp}"
    out.mkdir(parents=True, exist_ok=True)

    work = Path(tempfile.mkdtemp(prefix="mailtriage-latency."))
    work.chmod(0o755)
    bed = work / "dovecot"
    daemon = None
    relay = None
    conns = []
    try:
        dovecot("init", bed)
        dovecot("start", bed)
        port = int((bed / "port").read_text())
        daemon_port = port
        if a.delay_ms > 0:
            relay = Relay(port, a.delay_ms, log_path=out / "relay.log").start()
            daemon_port = relay.port
        (work / "mt").mkdir()
        cfg = work / "mt" / "mailtriage.yaml"
        cfg.write_text(f"""state: {work}/mt/state.db
log: {{level: info}}
accounts:
  - name: bench
    profile: {HERE}/profiles/bench.yaml
    imap: {{host: 127.0.0.1, port: {daemon_port}, tls: none, user: bench, password: {{env: BENCH_PW}}}}
    backfill: none
    watch: idle
""")
        shutil.copy(cfg, out / "mailtriage.yaml")
        poller = login(port)
        conns.append(poller)
        poller.create('"Triage/SALES"')  # so STATUS works before the first filing
        logf = open(out / "daemon.log", "w")
        daemon = subprocess.Popen([str(binary), "run", "--config", str(cfg)], stdout=logf,
                                  stderr=subprocess.STDOUT, env=os.environ | {"BENCH_PW": PW})
        end = time.monotonic() + 15
        while "first start" not in (out / "daemon.log").read_text():
            if daemon.poll() is not None or time.monotonic() > end:
                raise SystemExit(f"the daemon did not start (see {out / 'daemon.log'})")
            time.sleep(0.01)
        time.sleep(0.5)  # let it settle into IDLE
        if relay:
            # Through the relay, connecting takes a round trip per step: wait until the
            # daemon has said nothing for 1 s (it is in IDLE).
            if not relay.wait_quiet(1.0, 60):
                raise SystemExit("the daemon never went quiet after connecting "
                                 f"(see {out / 'relay.log'})")
            at_connect = relay.snapshot()

        watcher = IdleWatcher(port)
        appender = login(port)
        conns.append(appender)

        def filed_count():
            typ, data = poller.status('"Triage/SALES"', "(MESSAGES)")
            return int(data[0].split(b"MESSAGES ")[1].split(b")")[0])

        gen = gen_corpus.Gen(7)
        samples = []  # (i, append_s, filed_s, notify_s)
        snaps = []  # the relay's counters right before each measured APPEND
        filed_snaps = []  # ... and when B saw it filed
        count = filed_count()
        total = a.warmup + a.messages
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"== {a.messages} messages (+{a.warmup} warm-up), one at a time; daemon pid "
              f"{daemon.pid}; load average {load}; the daemon "
              + (f"through a relay, {a.delay_ms:g} ms each way" if relay else "direct"),
              flush=True)
        settle = (max(4 * a.delay_ms, 100) if a.settle_ms is None else a.settle_ms) / 1e3
        for i in range(total):
            raw = message(i, gen)
            if relay and settle > 0 and not relay.wait_quiet(settle, 30):
                raise SystemExit(f"message {i}: the daemon never went quiet "
                                 f"(see {out / 'relay.log'})")
            mark = watcher.restart()
            if relay and i >= a.warmup:
                snaps.append(relay.snapshot())
            ts = time.perf_counter()
            typ, resp = appender.append("INBOX", None, None, raw)
            t0 = time.perf_counter()
            if typ != "OK":
                raise SystemExit(f"APPEND failed: {resp}")
            while True:
                n = filed_count()
                t = time.perf_counter()
                if n > count:
                    break
                if daemon.poll() is not None:
                    raise SystemExit(f"the daemon exited with {daemon.returncode} "
                                     f"(see {out / 'daemon.log'})")
                if t - t0 > a.timeout:
                    raise SystemExit(f"message {i} not filed within {a.timeout} s "
                                     f"(see {out / 'daemon.log'})")
                time.sleep(0.002)
            if n != count + 1:
                raise SystemExit(f"message {i}: Triage/SALES went from {count} to {n}")
            count = n
            if relay and i >= a.warmup:
                filed_snaps.append(relay.snapshot())
            # C's EXISTS comes ~0.5 s after the APPEND, like mailtriage's; if mailtriage
            # filed the message first, C never sees it: do not wait long for it.
            tn = watcher.exists_after(mark, 0.25)
            if i >= a.warmup:
                samples.append((i, t0 - ts, t - t0, (tn - t0) if tn else float("nan")))
            if (i + 1) % 100 == 0:
                print(f"   {i + 1}/{total}", flush=True)
            time.sleep(0.1)

        if relay:
            if not relay.wait_quiet(1.0, 30):
                raise SystemExit("the daemon never went quiet after the last message "
                                 f"(see {out / 'relay.log'})")
            at_quiet = relay.snapshot()

        # Checks: everything filed once, INBOX empty, nothing marked \Seen.
        typ, data = poller.status('"Triage/SALES"', "(MESSAGES UNSEEN)")
        st = data[0].decode()
        typ, data2 = poller.status("INBOX", "(MESSAGES)")
        problems = []
        if f"MESSAGES {total} " not in st + " " or f"UNSEEN {total})" not in st:
            problems.append(f"Triage/SALES: {st} (expected {total} messages, all unseen)")
        if b"MESSAGES 0)" not in data2[0]:
            problems.append(f"INBOX not empty: {data2[0].decode()}")
        mem = vm(daemon.pid)
        watcher.stop()
        daemon.send_signal(signal.SIGTERM)
        t_term = time.perf_counter()
        try:
            rc = daemon.wait(30)
        except subprocess.TimeoutExpired:
            rc = None
            problems.append("the daemon did not exit within 30 s of SIGTERM")
        t_exit = time.perf_counter() - t_term
        if rc not in (0, None):
            problems.append(f"the daemon exited with {rc} after SIGTERM")

        # per message: (round trips, commands) from its APPEND to the next APPEND (the last
        # until quiet), and of them until B saw it filed
        per_msg = []
        if relay:
            for k, snap in enumerate(snaps):
                d = Relay.diff(snaps[k + 1] if k + 1 < len(snaps) else at_quiet, snap)
                fd = Relay.diff(filed_snaps[k], snap)
                per_msg.append((d["round_trips"], d["commands"], fd["round_trips"], fd["commands"]))
        with open(out / "samples.tsv", "w") as f:
            f.write("msg\tappend_s\tappend_to_filed_s\tnotify_delay_s"
                    + ("\tround_trips\tcommands\tround_trips_to_filed\tcommands_to_filed"
                       if relay else "") + "\n")
            for k, s in enumerate(samples):
                row = list(s) + (list(per_msg[k]) if relay else [])
                f.write("\t".join(f"{x:.6f}" if isinstance(x, float) else str(x) for x in row) + "\n")
        lat = [s[2] for s in samples]
        notify = [s[3] for s in samples if s[3] == s[3]]
        own = [s[2] - s[3] for s in samples if s[3] == s[3]]
        app = [s[1] for s in samples]
        lines = [
            f"binary {binary}; daemon -> Dovecot "
            + (f"through a relay, {a.delay_ms:g} ms each way" if relay else "direct"),
            f"{'ms':<40} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'n':>5}",
        ]
        for name, xs in [("(a) APPEND done -> in Triage/SALES", lat),
                         ("(b) (a) minus IDLE notify delay", own),
                         ("    Dovecot IDLE notify delay (conn C)", notify),
                         ("    APPEND round trip (conn A)", app)]:
            lines.append(f"{name:<40} {pct(xs, 50) * 1e3:>8.1f} {pct(xs, 90) * 1e3:>8.1f} "
                         f"{pct(xs, 99) * 1e3:>8.1f} {max(xs) * 1e3:>8.1f} {len(xs):>5}")
        if len(own) < len(lat):
            lines.append(f"(b) has {len(lat) - len(own)} fewer samples: for those, connection C's "
                         "notification came after mailtriage had already filed the message, so "
                         "Dovecot never showed it to C")
        lines.append(f"mean (a) {statistics.mean(lat) * 1e3:.1f} ms, (b) {statistics.mean(own) * 1e3:.1f} ms")
        if relay:
            lines += relay_report(a, settle, at_connect, snaps, filed_snaps, at_quiet, per_msg)
        lines.append(f"daemon memory before SIGTERM: VmRSS {mem['VmRSS']:.1f} MiB, "
                     f"VmHWM {mem['VmHWM']:.1f} MiB")
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        lines.append(f"load average at the end: {load}")
        lines.append(f"SIGTERM -> exit: {t_exit:.2f} s, exit code {rc}")
        lines.append("checks: " + ("ok (every message filed once, INBOX empty, none \\Seen)"
                                   if not problems else "FAILED: " + "; ".join(problems)))
        text = "\n".join(lines)
        print(text)
        (out / "summary.txt").write_text(text + "\n")
        print(f"results: {out}")
        if problems:
            sys.exit(1)
    finally:
        for c in conns:
            try:
                c.logout()
            except Exception:
                pass
        if daemon and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if relay:
            relay.stop()
        try:
            dovecot("stop", bed)
        finally:
            if (bed / "log" / "dovecot.log").exists():
                shutil.copy(bed / "log" / "dovecot.log", out / "dovecot.log")
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
