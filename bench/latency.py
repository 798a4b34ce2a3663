#!/usr/bin/env python3
"""Filing latency of the mailtriage daemon with IMAP IDLE.

    MAILTRIAGE_BIN=target/release/mailtriage python3 bench/latency.py [--messages 500]

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
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in bench/
import gen_corpus  # noqa: E402

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


def main():
    ap = argparse.ArgumentParser(description="mailtriage filing latency with IDLE")
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=3, help="messages filed first, not counted")
    ap.add_argument("--timeout", type=float, default=30, help="seconds a message may take")
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
    conns = []
    try:
        dovecot("init", bed)
        dovecot("start", bed)
        port = int((bed / "port").read_text())
        (work / "mt").mkdir()
        cfg = work / "mt" / "mailtriage.yaml"
        cfg.write_text(f"""state: {work}/mt/state.db
log: {{level: info}}
accounts:
  - name: bench
    profile: {HERE}/profiles/bench.yaml
    imap: {{host: 127.0.0.1, port: {port}, tls: none, user: bench, password: {{env: BENCH_PW}}}}
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

        watcher = IdleWatcher(port)
        appender = login(port)
        conns.append(appender)

        def filed_count():
            typ, data = poller.status('"Triage/SALES"', "(MESSAGES)")
            return int(data[0].split(b"MESSAGES ")[1].split(b")")[0])

        gen = gen_corpus.Gen(7)
        samples = []  # (i, append_s, filed_s, notify_s)
        count = filed_count()
        total = a.warmup + a.messages
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"== {a.messages} messages (+{a.warmup} warm-up), one at a time; daemon pid "
              f"{daemon.pid}; load average {load}", flush=True)
        for i in range(total):
            raw = message(i, gen)
            mark = watcher.restart()
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
            # C's EXISTS comes ~0.5 s after the APPEND, like mailtriage's; if mailtriage
            # filed the message first, C never sees it: do not wait long for it.
            tn = watcher.exists_after(mark, 0.25)
            if i >= a.warmup:
                samples.append((i, t0 - ts, t - t0, (tn - t0) if tn else float("nan")))
            if (i + 1) % 100 == 0:
                print(f"   {i + 1}/{total}", flush=True)
            time.sleep(0.1)

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

        with open(out / "samples.tsv", "w") as f:
            f.write("msg\tappend_s\tappend_to_filed_s\tnotify_delay_s\n")
            for s in samples:
                f.write("\t".join(f"{x:.6f}" if isinstance(x, float) else str(x) for x in s) + "\n")
        lat = [s[2] for s in samples]
        notify = [s[3] for s in samples if s[3] == s[3]]
        own = [s[2] - s[3] for s in samples if s[3] == s[3]]
        app = [s[1] for s in samples]
        lines = [
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
        try:
            dovecot("stop", bed)
        finally:
            if (bed / "log" / "dovecot.log").exists():
                shutil.copy(bed / "log" / "dovecot.log", out / "dovecot.log")
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
