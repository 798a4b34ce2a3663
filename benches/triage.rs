//! `cargo bench`: parse + triage throughput, one core, on sample-mail/ and (when fetched
//! with bench/fetch-corpus.sh) the SpamAssassin public corpus.
//!
//! Prints messages/s and MB/s per core (median of several rounds), plus the share of time
//! spent parsing versus deciding. Not a test: numbers depend on the machine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mailtriage::mail::{MessageView, DEFAULT_MAX_SCAN_BYTES};
use mailtriage::profile::Profile;
use mailtriage::triage::{triage, Context};

fn load_dir(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
}

/// The message with List-*, Precedence and Auto-Submitted headers removed, so every
/// message takes the full path (name mentions, sentiment, escalation) instead of being
/// set aside as list mail.
fn without_list_headers(raw: &[u8]) -> Vec<u8> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(raw.len());
    let (head, body) = raw.split_at(split);
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let continuation = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if !continuation {
            let lower = line.to_ascii_lowercase();
            skipping = lower.starts_with(b"list-")
                || lower.starts_with(b"precedence:")
                || lower.starts_with(b"auto-submitted:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

/// The message with CRLF line endings (bare LFs become CRLF).
fn with_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Best round: on a shared machine the fastest round is the least disturbed one.
fn best(v: &[Duration]) -> Duration {
    v.iter().copied().min().unwrap_or_default()
}

/// Runs `f` over all messages `rounds` times; returns every round's time.
fn time_rounds(msgs: &[Vec<u8>], rounds: usize, mut f: impl FnMut(&[u8])) -> Vec<Duration> {
    for m in msgs.iter().take(200) {
        f(m);
    }
    let mut times = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for m in msgs {
            f(m);
        }
        times.push(start.elapsed());
    }
    times
}

fn report(name: &str, msgs: &[Vec<u8>], profile: &Profile) {
    // `cargo bench -- WORD` runs only the lines whose name contains WORD.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
        return;
    }
    if msgs.is_empty() {
        println!("{name:<28} (not present; run bench/fetch-corpus.sh)");
        return;
    }
    let bytes: usize = msgs.iter().map(Vec::len).sum();
    let rounds = if msgs.len() < 500 { 50 } else { 9 };
    let ctx = Context::default();
    let parse = time_rounds(msgs, rounds, |m| {
        std::hint::black_box(MessageView::parse(m, DEFAULT_MAX_SCAN_BYTES));
    });
    let views: Vec<MessageView> = msgs
        .iter()
        .map(|m| MessageView::parse(m, DEFAULT_MAX_SCAN_BYTES))
        .collect();
    let mut i = 0;
    let decide = time_rounds(msgs, rounds, |_| {
        std::hint::black_box(triage(&views[i % views.len()], profile, &ctx));
        i += 1;
    });
    let total = time_rounds(msgs, rounds, |m| {
        let v = MessageView::parse(m, DEFAULT_MAX_SCAN_BYTES);
        std::hint::black_box(triage(&v, profile, &ctx));
    });
    let mut sorted = total.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2].as_secs_f64();
    let secs = best(&total).as_secs_f64();
    println!(
        "{name:<28} {:>6} msgs {:>5.1} MB  {:>7.0} msgs/s {:>6.1} MB/s  (median {:>6.0} msgs/s; parse {:>4.1} + triage {:>4.1} µs/msg)",
        msgs.len(),
        bytes as f64 / 1e6,
        msgs.len() as f64 / secs,
        bytes as f64 / 1e6 / secs,
        msgs.len() as f64 / median,
        best(&parse).as_secs_f64() * 1e6 / msgs.len() as f64,
        best(&decide).as_secs_f64() * 1e6 / msgs.len() as f64,
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: then this is
    // only a smoke test that the benchmark still runs.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let profile = match Profile::load(&root.join("profiles/hottub.yaml")) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if !benchmarking {
        let msgs = load_dir(&root.join("sample-mail"));
        let ctx = Context::default();
        for m in &msgs {
            std::hint::black_box(triage(
                &MessageView::parse(m, DEFAULT_MAX_SCAN_BYTES),
                &profile,
                &ctx,
            ));
        }
        println!(
            "benchmark smoke test: {} messages triaged (run `cargo bench` to measure)",
            msgs.len()
        );
        return;
    }
    println!("parse + triage, one core, profile hottub (sentiment_then_keyword); best of N rounds");
    report(
        "sample-mail",
        &load_dir(&root.join("sample-mail")),
        &profile,
    );
    let sa = root.join("bench/corpus/spamassassin");
    let mut ham = Vec::new();
    for g in ["easy-ham-1", "easy-ham-2", "hard-ham-1"] {
        ham.extend(load_dir(&sa.join(g)));
    }
    report("spamassassin ham", &ham, &profile);
    let ham_full: Vec<Vec<u8>> = ham.iter().map(|m| without_list_headers(m)).collect();
    report("  ham, list headers removed", &ham_full, &profile);
    let mut spam = Vec::new();
    for g in ["spam-1", "spam-2"] {
        spam.extend(load_dir(&sa.join(g)));
    }
    report("spamassassin spam", &spam, &profile);
    // The IMAP benchmark's corpus and rules (bench/gen_corpus.py, bench/profiles/bench.yaml).
    match Profile::load(&root.join("bench/profiles/bench.yaml")) {
        Ok(bench) => {
            let msgs = load_dir(&root.join("bench/corpus/bench10k"));
            report("bench10k (bench profile)", &msgs, &bench);
            // As an IMAP server sends them: CRLF line endings.
            let crlf: Vec<Vec<u8>> = msgs.iter().map(|m| with_crlf(m)).collect();
            report("  bench10k, CRLF", &crlf, &bench);
        }
        Err(e) => eprintln!("{e}"),
    }
}
