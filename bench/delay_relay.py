#!/usr/bin/env python3
"""A TCP relay that delays each direction, and counts an IMAP client's round trips.

    python3 bench/delay_relay.py --listen 1143 --target 143 --delay-ms 50 [--log relay.log]

127.0.0.1:<listen> -> 127.0.0.1:<target>. Every chunk read from either side is written
to the other side `delay_ms` after it was read (a timestamped FIFO per direction: chunks
keep their order, and the delays do not add up: ten chunks read within 1 ms all leave
about `delay_ms` later). With 50 ms each way, a round trip costs >= 100 ms, like a
hosted server 50-100 ms away.

Counted per connection and in total:

* bytes each way;
* command lines: lines from the client that look like `TAG COMMAND ...` (a tag, a space,
  an alphabetic word), and `DONE` (the end of IDLE); literals (`{n}` / `{n+}` at the end
  of a line) are skipped in both directions, so message bodies are never parsed as lines;
* verbs: the command word after the tag, with `UID` joined to the next word (`UID FETCH`,
  `UID MOVE`, `IDLE`, `DONE`, `NOOP`, ...);
* round trips: how many times the client sent data after the relay had delivered server
  data to it since the client's previous send: the turns of the conversation. Commands
  the client pipelines (sends without waiting for an answer in between) share one.

Usable as a module (the benchmark `latency.py` does):

    r = Relay(target_port, delay_ms, log_path=None).start()   # r.port: where to connect
    before = r.snapshot()           # totals: a plain dict, safe to keep
    ...
    diff = Relay.diff(r.snapshot(), before)
    r.stop()

The optional log has one line per client command (arguments cut at 100 characters,
LOGIN/AUTHENTICATE arguments and other client lines never written, only their length) and per server line that is not inside a
literal (cut at 100 characters), with the time since the relay started and the
connection number; `C>` marks what the client sent, `S>` what the server sent (time of
arrival at the relay, before the delay). Python 3 standard library only.
"""

import argparse
import asyncio
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter

TAGGED = re.compile(rb"^[A-Za-z0-9._\-]+ ([A-Za-z]+)(?: ([A-Za-z]+))?")
LITERAL = re.compile(rb"\{(\d+)\+?\}$")
SECRET = {"LOGIN", "AUTHENTICATE"}


class Lines:
    """Splits one direction of an IMAP stream into lines, skipping literals."""

    def __init__(self):
        self.buf = b""
        self.skip = 0  # literal bytes still to come

    def feed(self, data):
        out = []
        i = 0
        n = len(data)
        while i < n:
            if self.skip:
                take = min(self.skip, n - i)
                self.skip -= take
                i += take
                continue
            j = data.find(b"\n", i)
            if j < 0:
                self.buf += data[i:]
                if len(self.buf) > 1 << 20:  # no newline in 1 MiB: not line-oriented
                    self.buf = b""
                break
            line = self.buf + data[i:j]
            self.buf = b""
            i = j + 1
            line = line.rstrip(b"\r")
            m = LITERAL.search(line)
            if m:
                self.skip = int(m.group(1))
            out.append(line)
        return out


def verb_of(line):
    """The command verb of a client line (`UID FETCH`, `IDLE`, `DONE`) or None."""
    if line.strip().upper() == b"DONE":
        return "DONE"
    m = TAGGED.match(line)
    if not m:
        return None
    v = m.group(1).decode().upper()
    if v == "UID" and m.group(2):
        v = "UID " + m.group(2).decode().upper()
    return v


def new_counters():
    return {"bytes_c2s": 0, "bytes_s2c": 0, "commands": 0, "round_trips": 0,
            "verbs": Counter()}


class Conn:
    def __init__(self, no, relay):
        self.no = no
        self.relay = relay
        self.c = new_counters()
        self.served = False  # server data delivered to the client since its last send
        self.client_lines = Lines()
        self.server_lines = Lines()
        self.opened = time.monotonic()


class Relay:
    def __init__(self, target_port, delay_ms, listen_port=0, log_path=None,
                 target_host="127.0.0.1", quiet=True):
        self.target = (target_host, target_port)
        self.delay = delay_ms / 1000.0
        self.listen_port = listen_port
        self.port = None
        self.log_path = log_path
        self.log = None
        self.quiet = quiet
        self.lock = threading.Lock()
        self.total = new_counters()
        self.conns = []  # every Conn, closed ones too
        self.last_activity = time.monotonic()
        self.t_start = time.monotonic()
        self.loop = None
        self.thread = None
        self.server = None
        self.tasks = set()

    # ---- in a thread of its own (module use) -------------------------------------
    def start(self):
        ready = threading.Event()
        err = []

        def run():
            self.loop = asyncio.new_event_loop()
            try:
                self.loop.run_until_complete(self._listen())
            except Exception as e:  # noqa: BLE001
                err.append(e)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self._close())
            self.loop.close()

        self.thread = threading.Thread(target=run, name="delay-relay", daemon=True)
        self.thread.start()
        ready.wait(10)
        if err:
            raise err[0]
        if self.port is None:
            raise RuntimeError("the relay did not start")
        return self

    def stop(self):
        if self.loop and self.thread and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    # ---- counters ----------------------------------------------------------------
    def snapshot(self):
        """Totals and per-connection counters now: plain data, safe to keep."""
        with self.lock:
            return {
                "t": time.monotonic(),
                "total": _copy(self.total),
                "connections": {c.no: _copy(c.c) for c in self.conns},
            }

    @staticmethod
    def diff(after, before):
        """Counters of `after` minus `before` (totals only)."""
        a, b = after["total"], before["total"]
        d = {k: a[k] - b[k] for k in a if k != "verbs"}
        d["verbs"] = a["verbs"] - b["verbs"]  # Counter subtraction keeps positives
        return d

    def quiet_for(self):
        with self.lock:
            return time.monotonic() - self.last_activity

    def wait_quiet(self, seconds, timeout):
        """Waits until no byte has passed either way for `seconds`; False on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            q = self.quiet_for()
            if q >= seconds:
                return True
            time.sleep(min(seconds - q, 0.05) + 0.001)
        return False

    # ---- the relay itself ---------------------------------------------------------
    async def _listen(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen_port)
        self.port = self.server.sockets[0].getsockname()[1]
        if self.log_path:
            self.log = open(self.log_path, "w", buffering=1)

    async def _close(self):
        if self.server:
            self.server.close()
        for t in list(self.tasks):
            t.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.log:
            self.log.close()

    def _note(self, conn, arrow, text):
        if self.log:
            self.log.write(f"{time.monotonic() - self.t_start:10.4f} c{conn.no} {arrow} {text}\n")

    async def _handle(self, creader, cwriter):
        task = asyncio.current_task()
        self.tasks.add(task)
        with self.lock:
            conn = Conn(len(self.conns) + 1, self)
            self.conns.append(conn)
        try:
            sreader, swriter = await asyncio.open_connection(*self.target)
        except OSError as e:
            self._note(conn, "!!", f"cannot connect to {self.target}: {e}")
            cwriter.close()
            self.tasks.discard(task)
            return
        for w in (cwriter, swriter):
            s = w.get_extra_info("socket")
            if s is not None:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._note(conn, "==", "connected")
        q_up, q_down = asyncio.Queue(), asyncio.Queue()
        parts = [
            asyncio.ensure_future(self._read(conn, creader, q_up, True)),
            asyncio.ensure_future(self._write(conn, swriter, q_up, False)),
            asyncio.ensure_future(self._read(conn, sreader, q_down, False)),
            asyncio.ensure_future(self._write(conn, cwriter, q_down, True)),
        ]
        try:
            # Ends when both writers have passed on their side's end of stream.
            await asyncio.gather(parts[1], parts[3], return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the relay stops: close this connection below, quietly
        finally:
            for p in parts:
                p.cancel()
            await asyncio.gather(*parts, return_exceptions=True)
            for w in (cwriter, swriter):
                try:
                    w.close()
                except Exception:  # noqa: BLE001
                    pass
            self._note(conn, "==", "closed " + _fmt(conn.c))
            if not self.quiet:
                print(f"connection {conn.no} closed after "
                      f"{time.monotonic() - conn.opened:.1f} s: {_fmt(conn.c)}",
                      file=sys.stderr, flush=True)
            self.tasks.discard(task)

    async def _read(self, conn, reader, q, from_client):
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await reader.read(65536)
            except (OSError, asyncio.IncompleteReadError):
                data = b""
            now = loop.time()
            if data:
                self._count_in(conn, data, from_client)
            q.put_nowait((now + self.delay, data))
            if not data:
                return

    async def _write(self, conn, writer, q, to_client):
        loop = asyncio.get_running_loop()
        while True:
            due, data = await q.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    if writer.can_write_eof():
                        writer.write_eof()
                    else:
                        writer.close()
                except (OSError, RuntimeError):
                    pass
                return
            if to_client:
                with self.lock:
                    conn.served = True
                    self.last_activity = time.monotonic()
            try:
                writer.write(data)
                await writer.drain()
            except (OSError, RuntimeError):
                return

    def _count_in(self, conn, data, from_client):
        lines = (conn.client_lines if from_client else conn.server_lines).feed(data)
        with self.lock:
            self.last_activity = time.monotonic()
            for c in (conn.c, self.total):
                c["bytes_c2s" if from_client else "bytes_s2c"] += len(data)
            if from_client:
                if conn.served:
                    conn.served = False
                    conn.c["round_trips"] += 1
                    self.total["round_trips"] += 1
                for line in lines:
                    v = verb_of(line)
                    if v is None:
                        continue
                    for c in (conn.c, self.total):
                        c["commands"] += 1
                        c["verbs"][v] += 1
        if self.log:
            for line in lines:
                if from_client:
                    v = verb_of(line)
                    if v in SECRET:
                        text = line.split(b" ", 1)[0].decode(errors="replace") + f" {v} ..."
                    elif not line:
                        continue  # the end of a literal
                    elif v is None:  # a continuation (maybe an AUTHENTICATE secret)
                        text = f"<{len(line)} bytes>"
                    else:
                        text = line[:100].decode(errors="replace")
                    self._note(conn, "C>", text)
                else:
                    self._note(conn, "S>", line[:100].decode(errors="replace"))


def _copy(c):
    d = dict(c)
    d["verbs"] = Counter(c["verbs"])
    return d


def _fmt(c):
    verbs = ", ".join(f"{v} {n}" for v, n in sorted(c["verbs"].items(), key=lambda x: -x[1]))
    return (f"{c['round_trips']} round trips, {c['commands']} commands ({verbs}), "
            f"{c['bytes_c2s']} bytes up, {c['bytes_s2c']} bytes down")


def main():
    ap = argparse.ArgumentParser(description="TCP relay that delays both directions and "
                                 "counts IMAP round trips")
    ap.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1 to listen on")
    ap.add_argument("--target", type=int, required=True, help="port on 127.0.0.1 to relay to")
    ap.add_argument("--delay-ms", type=float, default=50, help="delay per direction (ms)")
    ap.add_argument("--log", help="write a transcript of command verbs and server lines")
    a = ap.parse_args()
    r = Relay(a.target, a.delay_ms, listen_port=a.listen, log_path=a.log, quiet=False).start()
    print(f"relaying 127.0.0.1:{r.port} -> 127.0.0.1:{a.target}, {a.delay_ms:g} ms each way; "
          "Ctrl-C prints the totals", file=sys.stderr, flush=True)
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    while not stop.wait(1):
        pass
    snap = r.snapshot()
    r.stop()
    for no, c in snap["connections"].items():
        print(f"connection {no}: {_fmt(c)}")
    print(f"total ({len(snap['connections'])} connections): {_fmt(snap['total'])}")


if __name__ == "__main__":
    main()
