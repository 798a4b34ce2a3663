//! Issue 19 (security review): what a message or a server can make the daemon read.
//!
//! 1. A header of any size costs bounded memory: it is fetched up to its cap
//!    (`BODY.PEEK[HEADER]<0.N>`), and the message is still decided — on its text too,
//!    decoded — and filed byte for byte, never marked `\Seen`.
//! 2. The same from a Maildir: the file is read up to its parse limit, the rest of an
//!    oversized header read through without being kept, and the text read after it.
//! 3. A message whose header passes the cap keeps one signature however it is read —
//!    whole, through a capped fetch, in recovery — so a move the daemon never heard the
//!    end of is still recognised as done: nothing lost, nothing filed twice.
//! 4. A hostile server cannot make the response reader hold a literal it announces but
//!    the daemon never asked for: it is cut to the fetch's limit; the message is filed
//!    once the server behaves.

use std::time::Duration;

use super::daemon::{assert_exactly_once, mailbox_contents, message, root, Conf, Setup};
use super::harness::{Dovecot, DovecotOptions};
use super::proxy::Proxy;
use mailtriage::mailbox::MAX_HEADER_BYTES;

const PW: (&str, &str) = ("MT_TEST_PASSWORD", "alicepw");

fn setup(port: u16, extra: &str) -> Setup {
    Setup::imap_port(
        port,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: PW.0,
            extra,
        },
    )
}

/// The high-water mark of a process's resident memory (VmHWM), in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `mailtriage run --once` to its end; its exit status and peak RSS in KiB (sampled
/// until it exits: VmHWM only grows, so nothing but the last instant is missed).
fn run_once_peak(s: &Setup, env: &[(&str, &str)]) -> (bool, u64) {
    let mut daemon = s.start_with(&["--once"], env);
    let pid = daemon.pid();
    let mut peak = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while daemon.running() && std::time::Instant::now() < deadline {
        peak = peak.max(vm_hwm_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(1));
    }
    let ok = daemon
        .term(Duration::from_secs(5))
        .is_some_and(|st| st.success());
    (ok, peak)
}

/// A message with one header line of `junk` bytes before its content fields, asking for a
/// quote (SALES in the Hot Tub profile) in its text only: its subject says nothing, and
/// mail that says nothing goes to SUPPORT. With `base64`, the text is encoded: only a
/// reader that decodes it as its (cut off) content fields say learns what it asks.
fn huge_header_message(id: &str, junk: usize, base64: bool) -> Vec<u8> {
    let mut m = format!(
        "From: Pat Customer <pat@example.com>\r\nTo: info@hottubman.ca\r\nSubject: Hello\r\n\
         Date: Mon, 2 Mar 2026 10:00:00 -0500\r\nMessage-ID: <{id}@test.example>\r\nX-Junk: "
    )
    .into_bytes();
    m.extend(std::iter::repeat_n(b'a', junk));
    m.extend_from_slice(b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
    if base64 {
        // "Could you send a quote for a new hot tub? We would like to buy one this spring."
        m.extend_from_slice(
            b"Content-Transfer-Encoding: base64\r\n\r\n\
              Q291bGQgeW91IHNlbmQgYSBxdW90ZSBmb3IgYSBuZXcgaG90IHR1Yj8gV2Ugd291bGQgbGlrZSB0\r\n\
              byBidXkgb25lIHRoaXMgc3ByaW5nLg==\r\n",
        );
    } else {
        m.extend_from_slice(
            b"\r\nCould you send a quote for a new hot tub? We would like to buy one this spring.\r\n",
        );
    }
    m
}

/// Regression (issue 19): a 150 MB header line took the daemon's RSS to 325 MB, because
/// `BODY.PEEK[HEADER]` had no cap. A 40 MB one (the test stays fast) must now cost about
/// what a small message costs. Such a message is still decided on its text and filed
/// byte-identical: the 40 MB one although Dovecot, past 10 MiB of header, no longer knows
/// its type; a 2 MB one (whose type Dovecot knows) on its base64 text, decoded as its
/// content fields, cut off with the rest of its header, say.
#[test]
fn regression_a_40_mb_header_line_is_filed_with_bounded_memory() {
    const JUNK: usize = 40 * 1024 * 1024;
    let d = Dovecot::start(DovecotOptions::default());
    let s = setup(d.port(), "    backfill: all\n");
    // The same daemon on a small message first: the memory any run needs.
    let small = message("small", "Heater", "The heater is broken, please repair it");
    d.deliver("alice", "INBOX", &small);
    let (ok, baseline) = run_once_peak(&s, &[PW]);
    assert!(ok, "{}", s.log_text());
    let huge = huge_header_message("huge", JUNK, false);
    let encoded = huge_header_message("encoded", 2 * 1024 * 1024, true);
    d.deliver_many("alice", "INBOX", &[huge.clone(), encoded.clone()]);
    let (ok, peak) = run_once_peak(&s, &[PW]);
    let log = s.log_text();
    assert!(ok, "{log}");
    eprintln!(
        "security_fetch: peak RSS {baseline} KiB on a small message, {peak} KiB on a {} MiB header line",
        JUNK >> 20
    );
    // Fetched whole, the header would sit in the reader's buffer and in the message (80
    // MiB at least); capped, it costs well under a tenth of that.
    let delta = peak.saturating_sub(baseline);
    assert!(
        delta < 8 * 1024,
        "the header line cost {delta} KiB of RSS (peak {peak} KiB, small message {baseline} KiB)"
    );
    let per_folder = assert_exactly_once(&d, "alice", &[small, huge, encoded]);
    assert_eq!(
        per_folder.get("SALES/Mark Johnson"),
        Some(&2),
        "decided on their text: {per_folder:?}\n{log}"
    );
    for (folder, msgs) in mailbox_contents(&d, "alice") {
        for m in msgs {
            assert!(
                !m.flags.iter().any(|f| f == "\\Seen"),
                "{folder} uid {} was marked seen",
                m.uid
            );
        }
    }
}

/// Issue 19, on the Maildir backend: a file was read up to its parse limit (1 MiB), so a
/// 40 MB header line cost no memory, but its text was never read and the message was
/// decided on its subject alone. The rest of the header is now read through without
/// being kept, and the text read after it.
#[test]
fn regression_maildir_a_40_mb_header_line_hides_no_text() {
    const JUNK: usize = 40 * 1024 * 1024;
    let d = Dovecot::start(DovecotOptions::default());
    let s = Setup::maildir(
        &d.maildir("alice"),
        &root().join("profiles/hottub.yaml"),
        "    backfill: all\n",
    );
    let small = message("small", "Heater", "The heater is broken, please repair it");
    d.deliver("alice", "INBOX", &small);
    let (ok, baseline) = run_once_peak(&s, &[]);
    assert!(ok, "{}", s.log_text());
    let huge = huge_header_message("huge", JUNK, false);
    d.deliver("alice", "INBOX", &huge);
    let (ok, peak) = run_once_peak(&s, &[]);
    let log = s.log_text();
    assert!(ok, "{log}");
    eprintln!(
        "security_fetch: Maildir: peak RSS {baseline} KiB on a small message, {peak} KiB on a {} MiB header line",
        JUNK >> 20
    );
    let delta = peak.saturating_sub(baseline);
    assert!(delta < 8 * 1024, "the header line cost {delta} KiB of RSS");
    let per_folder = assert_exactly_once(&d, "alice", &[small, huge]);
    assert_eq!(
        per_folder.get("SALES/Mark Johnson"),
        Some(&1),
        "decided on its text: {per_folder:?}\n{log}"
    );
}

/// A message without a Message-ID (recovery finds it by its signature alone) asking for a
/// quote, whose header block — blank line included — is `header` bytes long, with `body`
/// bytes of text.
fn no_id(header: usize, body: usize) -> Vec<u8> {
    let mut m = b"From: Pat Customer <pat@example.com>\r\nTo: info@hottubman.ca\r\nSubject: Quote\r\nX-Junk: ".to_vec();
    m.resize(header - 4, b'a');
    m.extend_from_slice(b"\r\n\r\nA quote for a new hot tub please.\r\n");
    while m.len() < header + body {
        m.extend_from_slice(b"We would like to buy one this spring.\r\n");
    }
    m
}

/// Issue 19: the header is hashed into the signature only up to its cap, so that the
/// message read whole when it was decided, and its copy read through a capped fetch when
/// recovery looks for it, agree — at the cap's very edge too (a header block 2 bytes past
/// it, whose cut falls inside the blank line), and for one read as a large message. The
/// server completes the move but its answer never arrives; the next run must find both
/// messages where they went and record them as filed, not lost, not filed again.
#[test]
fn a_move_the_daemon_missed_is_recognised_for_headers_past_the_cap() {
    let d = Dovecot::start(DovecotOptions::default());
    let originals = vec![
        // Read whole (within the scan cap below).
        no_id(MAX_HEADER_BYTES + 2, 100),
        // Read as a large message: its header and text capped.
        no_id(MAX_HEADER_BYTES + 40_000, 1024 * 1024),
    ];
    d.deliver_many("alice", "INBOX", &originals);
    let proxy = Proxy::start(d.port(), 7);
    proxy.swallow_answers("UID MOVE", 1);
    let s = setup(proxy.port(), "    backfill: all\nmax_scan_bytes: 1MiB\n");
    let (first, _) = run_once_peak(&s, &[PW]);
    assert!(
        !first,
        "the cut must have ended the first run: {}",
        s.log_text()
    );
    assert_eq!(proxy.stats().cuts(), 1, "{}", s.log_text());
    assert_eq!(
        d.messages("alice", "SALES/Mark Johnson").len(),
        2,
        "the server did the move"
    );
    let (second, _) = run_once_peak(&s, &[PW]);
    let log = s.log_text();
    assert!(second, "{log}");
    assert!(
        !log.contains("left the folder before it was filed"),
        "{log}"
    );
    let history = std::process::Command::new(env!("CARGO_BIN_EXE_mailtriage"))
        .args(["history", "--format", "json", "--limit", "0", "--state"])
        .arg(&s.state)
        .output()
        .expect("history runs");
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    assert_eq!(
        history.matches("\"status\":\"filed\"").count(),
        2,
        "{history}"
    );
    assert_exactly_once(&d, "alice", &originals);
}

/// Regression (issue 19): the response reader took a literal's announced size on trust and
/// made room for all of it, zero-filled, before one byte arrived: a server answering a
/// fetch with `{400000000}` cost 400 MB of RSS at once (one of 2 GB ends the connection:
/// async-imap refuses more than 512 MiB). The guard cuts it to the fetch's limit (1 MiB
/// with the default scan cap); the daemon then fails that fetch (the connection is cut),
/// and files the message on its next run.
#[test]
fn regression_a_hostile_server_announcing_a_huge_literal_costs_no_memory() {
    const ANNOUNCED: u64 = 400_000_000;
    let d = Dovecot::start(DovecotOptions::default());
    let proxy = Proxy::start(d.port(), 19);
    let s = setup(proxy.port(), "    backfill: all\n");
    let small = message("small", "Heater", "The heater is broken, please repair it");
    d.deliver("alice", "INBOX", &small);
    let (ok, baseline) = run_once_peak(&s, &[PW]);
    assert!(ok, "{}", s.log_text());
    let next = message("next", "Quote", "A quote for a new hot tub please");
    d.deliver("alice", "INBOX", &next);
    // The body fetch gets a literal of 400 MB instead, of which 64 KiB ever arrive.
    let mut answer = format!("* 1 FETCH (UID 2 BODY[] {{{ANNOUNCED}}}\r\n").into_bytes();
    answer.extend(std::iter::repeat_n(b'x', 64 * 1024));
    proxy.forge_answer("BODY.PEEK[]", &answer, Duration::from_millis(1500));
    let (ok, peak) = run_once_peak(&s, &[PW]);
    let log = s.log_text();
    assert!(!ok, "the cut connection must have failed that run: {log}");
    eprintln!(
        "security_fetch: peak RSS {baseline} KiB on a small message, {peak} KiB with a {ANNOUNCED}-byte literal announced"
    );
    let delta = peak.saturating_sub(baseline);
    assert!(
        delta < 32 * 1024,
        "the announced literal cost {delta} KiB of RSS (peak {peak} KiB, small message {baseline} KiB)"
    );
    assert!(
        log.contains(&format!("announced a literal of {ANNOUNCED} bytes")),
        "{log}"
    );
    // The server behaves again: nothing lost, nothing twice.
    let (ok, _) = run_once_peak(&s, &[PW]);
    assert!(ok, "{}", s.log_text());
    let per_folder = assert_exactly_once(&d, "alice", &[small, next]);
    assert_eq!(
        per_folder.get("SALES/Mark Johnson"),
        Some(&1),
        "{per_folder:?}"
    );
}
