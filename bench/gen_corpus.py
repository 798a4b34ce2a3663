#!/usr/bin/env python3
"""Builds the 10,000-message benchmark corpus, deterministically.

    python3 bench/gen_corpus.py [--seed 20240611] [--count 10000] [--out bench/corpus/bench10k]

Writes OUT/00001.eml ... OUT/10000.eml:

* first the SpamAssassin ham (easy-ham-1, easy-ham-2, hard-ham-1 from
  bench/corpus/spamassassin/, fetched with bench/fetch-corpus.sh if absent: 4,150
  messages), byte for byte;
* then generated business mail up to COUNT messages. Bodies come from a vocabulary that
  contains none of the 20 benchmark keywords as a substring (checked below); about 55%
  of the messages get 1-2 keywords in random case in their new text, about 25% are
  multipart/alternative (text + HTML), about 5% are long quoted threads (sometimes with
  one more keyword only in the quoted part), all with realistic headers and unique
  Message-IDs.

Also writes OUT.expected.json: the folder counts that a substring matcher over the raw
body (imapfilter's match_body, first match wins) must produce. The benchmark checks
imapfilter against it, so a misconfigured imapfilter run cannot go unnoticed.

Same seed, same bytes: every run of this script produces identical files.
"""

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The rules of the benchmark, in first-match order (also used by the other scripts).
RULES = [
    ("URGENT", ["urgent", "asap", "escalate", "outage", "lawyer"]),
    ("BILLING", ["invoice", "refund", "payment", "overdue", "chargeback"]),
    ("SALES", ["quote", "pricing", "discount", "demo", "trial"]),
    ("SUPPORT", ["broken", "bug", "error", "crash", "password"]),
]
KEYWORDS = [k for _, ks in RULES for k in ks]
SA_GROUPS = ["easy-ham-1", "easy-ham-2", "hard-ham-1"]

# Vocabulary for generated text. Every entry is checked against KEYWORDS below; a word
# that contains a keyword as a substring ("demonstrate", "industrial", "errors",
# "debug", "quoted") is a bug in this list and stops the script.
WORDS = """
account accounts agenda agreement analysis annual answer approval april archive arrange
arrival article aspect assets assistant attached attachment audit august autumn available
backlog balance batch before begin benefit board booking branch brief budget building
calendar call campaign capacity catalog change channel chapter check client clients
colleague comment committee company compare confirm contact content context contract
copy corner cost council course customer customers daily data date deadline december
delivery department design desk detail details device direct director document documents
draft early east effort email employee entry estimate event evening example expense
export factory feature february feedback figure figures file files final finance floor
folder follow forecast form forward friday future garden goal group guide handbook
headline health holiday hotel idea import inbox income index input inside install
interview item items january july june kitchen label language launch layout leader
lease letter level license list local location lunch machine manager manual march
market material matter meeting member memo method metric middle minutes model monday
month morning notice november number object october office offer online opening option
order outline owner package page panel paper parcel partner party people period permit
person phase picture plan planning platform point policy portal position post poster
practice premises preview print priority process product profile program project
proposal purchase purpose quarter query question ratio reader record region release
remark report request research resource result review room route rule sample saturday
schedule screen season section sector segment seminar september series server service
session setting sheet shift shipment signature site slide smith snapshot software
source space speaker spring staff stage standard statement station status step stock
store story strategy street student studio subject summary summer sunday supplier
survey system table target task team template term territory test text thursday
ticket timeline title today topic total tour track training transfer travel tuesday
update upgrade usage user vendor venue version video view visit volume warehouse
website wednesday week weekend window winter word work workshop year
able active actual additional annual basic better big brief central clear common
complete current daily different digital early easy efficient entire external fair
familiar final fine first formal free fresh full general good great green happy
helpful important initial internal key large last late latest little local long
main major minor modern monthly natural new next nice normal official old open
original other overall own particular personal possible practical previous primary
private public quick ready real recent regular relevant remote right round safe
second secure separate short similar simple single small social special specific
standard strong successful suitable third total true typical useful usual various
weekly whole wide
add agree allow appreciate ask book bring build check choose collect complete confirm
consider continue cover create decide deliver describe discuss draft expect explain
find finish follow gather give handle hear help hold include inform join keep know
leave let like look make manage mean meet mention move need note offer open organise
pass plan prefer prepare present print provide reach read receive recommend remember
remind reply report request review schedule see send set share show sign start
submit suggest take talk tell think update upload use visit wait want welcome wonder
write
""".split()

FIRST = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William "
         "Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy "
         "Matthew Lisa Anthony Betty Mark Margaret Donald Sandra Steven Ashley Paul "
         "Kimberly Andrew Emily Joshua Donna Kenneth Michelle Kevin Carol Brian Amanda "
         "George Melissa Timothy Deborah Ronald Stephanie Jason Rebecca Edward Sharon "
         "Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley "
         "Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott Nicole Brandon Helen "
         "Benjamin Samantha Samuel Katherine Gregory Christine Alexander Rachel Frank Carolyn "
         "Patrick Janet Raymond Maria Jack Olivia Dennis Heather Jerry Diane Tyler Julie").split()
LAST = ("Smith Johnson Williams Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
        "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White "
        "Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
        "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell "
        "Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes "
        "Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson "
        "Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood "
        "James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers").split()
DOMAINS = ("northwind.example acme-corp.example globex.example initech.example umbrella.example "
           "hooli.example vandelay.example wayne-ent.example stark-ind.example soylent.example "
           "cyberdyne.example tyrell.example wonka.example gringotts.example oceanic.example "
           "massive-dynamic.example aperture.example blackmesa.example monarch.example "
           "pied-piper.example").split()
MAILERS = ["Microsoft Outlook 16.0", "Apple Mail (2.3654.120.0.1.13)", "Mozilla Thunderbird 115.6.0",
           "Roundcube Webmail/1.6.5", "K-9 Mail for Android", None, None]
GREETINGS = ["Hi {n},", "Hello {n},", "Dear {n},", "Good morning {n},", "{n},", "Hi all,", "Hello team,"]
CLOSINGS = ["Thanks,", "Best regards,", "Kind regards,", "Cheers,", "Many thanks,", "Regards,", "Best,"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
HTML_HEAD = ('<!DOCTYPE html>\n<html><head><meta http-equiv="Content-Type" content="text/html; '
             'charset=utf-8"><style>p {margin:0 0 1em 0} body {font-family: Helvetica, Arial, '
             'sans-serif; font-size: 14px}</style></head>\n<body>\n')
HTML_TAIL = "</body></html>\n"


def check_vocabulary():
    texts = WORDS + FIRST + LAST + DOMAINS + [m for m in MAILERS if m] + GREETINGS + CLOSINGS \
        + DAYS + MONTHS + [HTML_HEAD, HTML_TAIL]
    bad = sorted({t for t in texts for k in KEYWORDS if k in t.lower()})
    if bad:
        sys.exit(f"gen_corpus: vocabulary entries contain a keyword: {bad}")


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def person(self):
        r = self.r
        f, l = r.choice(FIRST), r.choice(LAST)
        return f, l, f"{f.lower()}.{l.lower()}@{r.choice(DOMAINS)}"

    def sentence(self, keywords=()):
        r = self.r
        n = r.randint(6, 18)
        words = [r.choice(WORDS) for _ in range(n)]
        for k in keywords:  # whole words, anywhere in the sentence
            words.insert(r.randint(0, len(words)), k)
        words[0] = words[0].capitalize()
        return " ".join(words) + r.choice([".", ".", ".", "?", "!"])

    def paragraph(self, keywords=()):
        r = self.r
        n = r.randint(1, 5)
        slots = [[] for _ in range(n)]
        for k in keywords:
            r.choice(slots).append(k)
        return " ".join(self.sentence(s) for s in slots)

    def random_case(self, k):
        r = self.r
        style = r.random()
        if style < 0.5:
            return k
        if style < 0.7:
            return k.capitalize()
        if style < 0.85:
            return k.upper()
        return "".join(c.upper() if r.random() < 0.5 else c for c in k)

    def date(self, t):
        r = self.r
        tz = r.choice(["+0000", "-0500", "+0100", "+0200", "-0800", "+0530"])
        g = time.gmtime(t)
        return (f"{DAYS[g.tm_wday]}, {g.tm_mday} {MONTHS[g.tm_mon - 1]} {g.tm_year} "
                f"{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d} {tz}")

    def message(self, i):
        """Returns (bytes, keywords in the new text, keywords only in the quoted part)."""
        r = self.r
        sf, sl, saddr = self.person()
        rf, rl, raddr = self.person()
        t = 1700000000 + i * 337 + r.randint(0, 300)
        kws = []
        if r.random() < 0.55:
            kws = r.sample(KEYWORDS, r.choice([1, 1, 2]))
        thread = r.random() < 0.05
        html = r.random() < 0.25
        quoted_kw = []
        if thread and r.random() < 0.3:
            quoted_kw = [r.choice(KEYWORDS)]
        subj_words = [r.choice(WORDS) for _ in range(r.randint(2, 7))]
        subject = " ".join(subj_words).capitalize()
        if thread:
            subject = "Re: " + subject

        greeting = r.choice(GREETINGS).format(n=rf)
        paras = [self.paragraph() for _ in range(r.randint(1, 6))]
        cased = [self.random_case(k) for k in kws]
        for k in cased:  # the keywords go into the new text
            j = r.randrange(len(paras))
            paras[j] = paras[j] + " " + self.sentence([k])
        closing = [r.choice(CLOSINGS), sf]
        sig = [f"{sf} {sl}", f"{r.choice(WORDS).capitalize()} {r.choice(WORDS).capitalize()}, "
               f"{saddr.split('@')[1]}", f"+1 555 {r.randint(100, 999)} {r.randint(1000, 9999)}"]
        quoted = []
        if thread:
            depth = r.randint(3, 12)
            qk = list(quoted_kw)
            for d in range(depth):
                qf, ql, qaddr = self.person()
                prefix = "> " * (d + 1)
                quoted.append(f"{prefix.strip()}")
                quoted.append(f"{'> ' * d}On {self.date(t - (d + 1) * 86400)}, {qf} {ql} <{qaddr}> wrote:")
                for _ in range(r.randint(4, 30)):
                    ks = [self.random_case(qk.pop())] if qk and r.random() < 0.3 else []
                    quoted.append(prefix + self.paragraph(ks))
                    quoted.append(prefix.rstrip())
            if qk:  # not placed yet: put it in the oldest quoted paragraph
                quoted.append("> " * depth + self.sentence([self.random_case(qk.pop())]))

        text_lines = [greeting, ""]
        for p in paras:
            text_lines += [p, ""]
        text_lines += closing + ["", "-- "] + sig
        if quoted:
            text_lines += [""] + quoted
        text = "\n".join(text_lines) + "\n"

        msgid = f"<{t:x}.{i:05d}.{r.getrandbits(48):012x}@{saddr.split('@')[1]}>"
        hdr = [
            f"Return-Path: <{saddr}>",
            f"Received: from mail.{saddr.split('@')[1]} (mail.{saddr.split('@')[1]} "
            f"[192.0.2.{r.randint(1, 254)}])\n\tby mx.bench.example (Postfix) with ESMTPS id "
            f"{r.getrandbits(40):010X}\n\tfor <{raddr}>; {self.date(t)}",
            f"Date: {self.date(t)}",
            f"From: {sf} {sl} <{saddr}>",
            f"To: {rf} {rl} <{raddr}>",
        ]
        if r.random() < 0.2:
            cf, cl, caddr = self.person()
            hdr.append(f"Cc: {cf} {cl} <{caddr}>")
        hdr += [f"Subject: {subject}", f"Message-ID: {msgid}"]
        if thread:
            hdr.append(f"In-Reply-To: <{r.getrandbits(64):016x}@{r.choice(DOMAINS)}>")
        mailer = r.choice(MAILERS)
        if mailer:
            hdr.append(f"X-Mailer: {mailer}")
        hdr.append("MIME-Version: 1.0")
        if html:
            b = f"=_{r.getrandbits(96):024x}"
            hdr.append(f'Content-Type: multipart/alternative;\n\tboundary="{b}"')
            html_body = HTML_HEAD + "".join(
                f"<p>{line}</p>\n" if line.strip() else "<br>\n" for line in text_lines) + HTML_TAIL
            body = (f"This is a multi-part message in MIME format.\n\n--{b}\n"
                    f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n"
                    f"{text}\n--{b}\nContent-Type: text/html; charset=utf-8\n"
                    f"Content-Transfer-Encoding: 7bit\n\n{html_body}\n--{b}--\n")
        else:
            hdr += ["Content-Type: text/plain; charset=utf-8; format=flowed",
                    "Content-Transfer-Encoding: 7bit"]
            body = text
        raw = ("\n".join(hdr) + "\n\n" + body).encode()
        return raw, [k.lower() for k in kws], quoted_kw


def body_of(raw):
    """The message text after the header, as imapfilter's match_body sees it."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        j = raw.find(sep)
        if j >= 0:
            return raw[j + len(sep):]
    return b""


def substring_category(raw):
    low = body_of(raw).lower()
    for cat, ks in RULES:
        if any(k.encode() in low for k in ks):
            return cat
    return "INBOX"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--out", default=str(HERE / "corpus" / "bench10k"))
    a = ap.parse_args()
    check_vocabulary()

    sa_root = HERE / "corpus" / "spamassassin"
    if not (sa_root / "easy-ham-1").is_dir():
        subprocess.run([str(HERE / "fetch-corpus.sh")], check=True)
    sa_files = [p for g in SA_GROUPS for p in sorted((sa_root / g).glob("*.eml"))]
    if len(sa_files) > a.count:
        sys.exit(f"gen_corpus: {len(sa_files)} SpamAssassin messages exceed --count {a.count}")

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.eml"):
        old.unlink()
    gen = Gen(a.seed)
    expected = {cat: 0 for cat, _ in RULES} | {"INBOX": 0}
    total = 0
    n_kw = n_html = n_thread = 0
    for i in range(1, a.count + 1):
        if i <= len(sa_files):
            raw = sa_files[i - 1].read_bytes()
        else:
            raw, kws, qkws = gen.message(i)
            # The vocabulary guarantees that the body holds exactly the keywords placed.
            low = body_of(raw).lower().decode()
            found = sorted({k for k in KEYWORDS if k in low})
            if found != sorted(set(kws) | set(qkws)):
                sys.exit(f"gen_corpus: message {i}: keywords placed {kws + qkws}, found {found}")
            n_kw += bool(kws)
            n_html += b"multipart/alternative" in raw[:4096]
            n_thread += b"\nIn-Reply-To:" in raw
        expected[substring_category(raw)] += 1
        (out / f"{i:05d}.eml").write_bytes(raw)
        total += len(raw)
    gen_n = a.count - len(sa_files)
    exp_file = Path(str(out) + ".expected.json")
    exp_file.write_text(json.dumps({
        "seed": a.seed, "count": a.count, "bytes": total,
        "spamassassin": len(sa_files), "generated": gen_n,
        "rules": RULES,
        "imapfilter_match_body_expected": expected,
    }, indent=1) + "\n")
    print(f"{a.count} messages ({len(sa_files)} SpamAssassin ham + {gen_n} generated: "
          f"{n_kw} with keywords, {n_html} multipart/alternative, {n_thread} threads), "
          f"{total / 1e6:.1f} MB in {out}")
    print("expected for a raw-body substring matcher (imapfilter match_body): "
          + ", ".join(f"{k} {v}" for k, v in expected.items()))


if __name__ == "__main__":
    main()
