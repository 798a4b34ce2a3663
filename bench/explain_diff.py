#!/usr/bin/env python3
"""Why mailtriage and imapfilter file the benchmark corpus differently.

    python3 bench/explain_diff.py TRIAGE.jsonl

TRIAGE.jsonl is `mailtriage triage CORPUS_DIR --profile bench/profiles/bench.yaml
--format json` (the same decisions the daemon makes over IMAP). For every message it
puts next to it what imapfilter's match_body rules do (a case-insensitive substring
search of the raw body, first rule wins; gen_corpus.substring_category) and prints a
table of the combinations where the two disagree, with mailtriage's reason, split by
SpamAssassin ham and generated mail.

Also usable as a module: expected_counts(TRIAGE.jsonl) gives mailtriage's folder counts.
"""

import collections
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in bench/
import gen_corpus  # noqa: E402

REASONS = {
    "not_routed_list": "mailing list (List-Id/List-Unsubscribe): routing.lists leave",
    "not_routed_bulk": "bulk (Precedence): routing.bulk leave",
    "not_routed_auto_reply": "auto-reply/bounce: routing.auto_replies leave",
    "not_routed_unmatched": "no keyword in subject + new text (only in quotes, signature, "
                            "markup, a header, or inside a longer word)",
    "other": "another category won (keyword in the subject or decoded text counted, "
             "or the higher one only in quotes/inside a word)",
}


def decisions(path):
    with open(path) as f:
        for line in f:
            if line.startswith("{"):
                yield json.loads(line)


def folder_of(d):
    return d["folder"] or "INBOX"


def expected_counts(path):
    c = collections.Counter(folder_of(d) for d in decisions(path))
    return dict(sorted(c.items()))


def main():
    path = sys.argv[1]
    n_sa = len([p for g in gen_corpus.SA_GROUPS
                for p in (HERE / "corpus" / "spamassassin" / g).glob("*.eml")])
    table = collections.Counter()
    same = collections.Counter()
    for d in decisions(path):
        f = Path(d["file"])
        part = "SpamAssassin" if int(f.stem) <= n_sa else "generated"
        imf = gen_corpus.substring_category(f.read_bytes())
        imf = "INBOX" if imf == "INBOX" else "Triage/" + imf
        mt = folder_of(d)
        if imf == mt:
            same[part] += 1
            continue
        why = d["reason"] if mt == "INBOX" else "other"
        table[(part, imf, mt, why)] += 1
    print(f"same folder: {same['SpamAssassin']} SpamAssassin + {same['generated']} generated; "
          f"different: {sum(table.values())}")
    print(f"{'part':<13} {'imapfilter':<15} {'mailtriage':<15} {'count':>5}  mailtriage's reason")
    for (part, imf, mt, why), n in sorted(table.items(), key=lambda kv: (kv[0][0], -kv[1])):
        print(f"{part:<13} {imf:<15} {mt:<15} {n:>5}  {REASONS.get(why, why)}")


if __name__ == "__main__":
    main()
