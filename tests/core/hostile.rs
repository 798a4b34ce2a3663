//! SPEC §13 "bad input loses nothing": every hostile message (see `hostile_gen`) goes through
//! `MessageView::parse` + `triage` and gets a decision, without a panic, in bounded time —
//! on a thread with the 2 MiB stack of a tokio worker, where the daemon triages (a stack
//! overflow there aborts the whole process, so it is tested, not assumed). The real
//! binary's peak RSS on the biggest of them stays within a few parse limits of its
//! baseline. Each bug the suite found is a regression test named after it, at the end.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mailtriage::mail::{parse_limit, MessageView, DEFAULT_MAX_SCAN_BYTES};
use mailtriage::profile::Profile;
use mailtriage::triage::{triage, Context, Decision};
use proptest::prelude::*;

use super::hostile_gen::{self, Case};

/// The stack of a tokio worker thread.
const WORKER_STACK: usize = 2 << 20;

/// Generous per-message bound in a debug build on a slow machine.
const PER_CASE: Duration = Duration::from_secs(5);

fn profile() -> Arc<Profile> {
    static P: OnceLock<Arc<Profile>> = OnceLock::new();
    P.get_or_init(|| {
        Arc::new(
            Profile::load(&super::root().join("profiles/hottub.yaml")).expect("hottub compiles"),
        )
    })
    .clone()
}

/// What one case produced.
struct Outcome {
    view: MessageView,
    decision: Decision,
    elapsed: Duration,
    /// The view the daemon builds (`MessageView::parse_for_triage`), which must be the same
    /// view without the full text, quoted text and signature.
    lean: MessageView,
}

/// Parses and triages `raw` on a fresh thread with a 2 MiB stack.
fn run_on_worker_stack(name: &str, raw: Arc<Vec<u8>>, max_scan_bytes: usize) -> Outcome {
    let p = profile();
    // Printed before the work: if the stack overflows, the abort message follows this line.
    eprintln!("hostile: {name} ({} bytes)", raw.len());
    std::thread::Builder::new()
        .name(format!("hostile-{name}"))
        .stack_size(WORKER_STACK)
        .spawn(move || {
            let start = Instant::now();
            let view = MessageView::parse(&raw, max_scan_bytes);
            let decision = triage(&view, &p, &Context::default());
            let elapsed = start.elapsed();
            Outcome {
                lean: MessageView::parse_for_triage(&raw, max_scan_bytes),
                view,
                decision,
                elapsed,
            }
        })
        .expect("spawn a worker-sized thread")
        .join()
        .unwrap_or_else(|_| panic!("{name}: parse + triage panicked"))
}

/// Every broken promise for one case, as messages.
fn check(case: &Case, o: &Outcome) -> Vec<String> {
    let mut bad = Vec::new();
    if o.decision.category.is_empty() {
        bad.push(format!("{}: no category", case.name));
    }
    if o.decision.recipient.is_some() && o.decision.folder.is_none() {
        bad.push(format!("{}: a recipient without a folder", case.name));
    }
    if o.view.text.len() > DEFAULT_MAX_SCAN_BYTES {
        bad.push(format!(
            "{}: text over the scan cap ({} bytes)",
            case.name,
            o.view.text.len()
        ));
    }
    if let Some(needle) = case.expect {
        if !o.view.text.contains(needle) && !o.view.subject.contains(needle) {
            bad.push(format!(
                "{}: lost {needle:?}; text starts {:?}",
                case.name,
                o.view.text.chars().take(120).collect::<String>()
            ));
        }
    }
    let mut expected_lean = o.view.clone();
    expected_lean.text.clear();
    expected_lean.body.quoted.clear();
    expected_lean.body.signature.clear();
    if format!("{:?}", o.lean) != format!("{expected_lean:?}") {
        bad.push(format!(
            "{}: the daemon's view differs from the full view: {:?} vs {expected_lean:?}",
            case.name, o.lean
        ));
    }
    if o.elapsed >= PER_CASE {
        bad.push(format!(
            "{}: took {:?} (bound {PER_CASE:?})",
            case.name, o.elapsed
        ));
    }
    bad
}

#[test]
fn every_hostile_message_gets_a_decision_on_a_worker_stack() {
    let mut timings = Vec::new();
    let mut failures = Vec::new();
    for mut case in hostile_gen::cases() {
        let raw = Arc::new(std::mem::take(&mut case.raw));
        let o = run_on_worker_stack(&case.name, raw.clone(), DEFAULT_MAX_SCAN_BYTES);
        eprintln!(
            "hostile: {:<45} {:>9.1} ms  {:>9} B  text {:>7} B  {}{}{}→ {} {:?}",
            case.name,
            o.elapsed.as_secs_f64() * 1000.0,
            raw.len(),
            o.view.text.len(),
            if o.view.truncated { "truncated " } else { "" },
            if o.view.unparsed { "unparsed " } else { "" },
            o.view
                .repairs
                .iter()
                .map(|r| format!("{r:?} "))
                .collect::<String>(),
            o.decision.category,
            o.decision.recipient,
        );
        failures.extend(check(&case, &o));
        timings.push((case.name.clone(), o.elapsed));
    }
    timings.sort_by_key(|t| std::cmp::Reverse(t.1));
    eprintln!("hostile: slowest: {:?}", &timings[..timings.len().min(5)]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The big messages, written once per test process under Cargo's scratch directory (they
/// are generated, never committed): the 50 MB attachment, the 10 MB one-line body, the
/// 5,000-part message, an mbox holding the 50 MB message then a small one, 1 MiB storms
/// of header fields and of addresses, and a tiny message for the baseline.
struct BigFiles {
    attachment_50mb: PathBuf,
    single_line_10mb: PathBuf,
    parts_5000: PathBuf,
    mbox_50mb: PathBuf,
    header_storm_1mib: PathBuf,
    address_storm_1mib: PathBuf,
    tiny: PathBuf,
}

fn big_files() -> &'static BigFiles {
    static FILES: OnceLock<BigFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile");
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        let files = BigFiles {
            attachment_50mb: dir.join("attachment-50mb.eml"),
            single_line_10mb: dir.join("single-line-10mb.eml"),
            parts_5000: dir.join("parts-5000.eml"),
            mbox_50mb: dir.join("big.mbox"),
            header_storm_1mib: dir.join("header-storm.eml"),
            address_storm_1mib: dir.join("address-storm.eml"),
            tiny: dir.join("tiny.eml"),
        };

        let write = |path: &Path, raw: &[u8]| {
            hostile_gen::write_file(path, |w| w.write_all(raw)).expect("write a hostile message");
        };
        hostile_gen::write_file(&files.attachment_50mb, |w| {
            hostile_gen::write_big_attachment(w, 50 * 1024 * 1024)
        })
        .expect("write the 50 MB message");
        write(
            &files.single_line_10mb,
            &hostile_gen::single_line_body(10 * 1024 * 1024),
        );
        write(
            &files.parts_5000,
            &hostile_gen::many_parts(5_000, "mixed", true),
        );
        write(
            &files.tiny,
            b"From: Pat <pat@example.com>\r\nSubject: hi\r\n\r\nA quote for a hot tub, please.\r\n",
        );
        let storm = |head: &str, unit: &str| {
            let mut s = String::from(head);
            while s.len() + unit.len() < 1024 * 1024 {
                s.push_str(unit);
            }
            s.push_str("\r\n\r\nA quote for a hot tub, please.\r\n");
            s.into_bytes()
        };
        write(
            &files.header_storm_1mib,
            &storm("Subject: hi\r\n", "a:b\r\n"),
        );
        write(
            &files.address_storm_1mib,
            &storm("Subject: hi\r\nTo: ", "a@b,"),
        );
        hostile_gen::write_file(&files.mbox_50mb, |w| {
            w.write_all(b"From pat@example.com Tue Mar  3 10:15:00 2026\n")?;
            hostile_gen::write_big_attachment(w, 50 * 1024 * 1024)?;
            w.write_all(b"\nFrom sam@example.com Tue Mar  3 10:16:00 2026\n")?;
            w.write_all(b"From: Sam <sam@example.com>\nSubject: leak\n\nThe tub is leaking.\n")
        })
        .expect("write the mbox");
        files
    })
}

#[test]
fn fifty_megabyte_attachment_gets_a_decision_on_a_worker_stack() {
    let path = &big_files().attachment_50mb;
    let size = std::fs::metadata(path).expect("stat").len() as usize;
    // What `mailtriage triage` hands the parser: the first bytes only, and the size.
    let mut prefix = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).expect("open"),
            parse_limit(DEFAULT_MAX_SCAN_BYTES) as u64,
        ),
        &mut prefix,
    )
    .expect("read");
    let p = profile();
    let (view, d, elapsed) = std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(move || {
            let start = Instant::now();
            let view = MessageView::parse_prefix(&prefix, size, DEFAULT_MAX_SCAN_BYTES);
            let d = triage(&view, &p, &Context::default());
            (view, d, start.elapsed())
        })
        .expect("spawn")
        .join()
        .expect("no panic");
    eprintln!("hostile: 50 MB attachment: {elapsed:?}, {:?}", d.category);
    assert!(view.text.contains(hostile_gen::NEEDLE));
    assert!(view.truncated, "a message cut at the parse limit says so");
    assert_eq!(view.size, size);
    assert_eq!(d.category, "SALES");
    assert!(elapsed < PER_CASE);
}

/// Peak RSS (VmHWM) of a process, sampled from /proc until it exits, in KiB; with its
/// output.
fn peak_rss_kib(args: &[&str]) -> (u64, std::process::Output) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailtriage"))
        .args(args)
        .current_dir(super::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailtriage starts");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        // VmHWM is the high-water mark, so sampling until exit misses nothing but the
        // last few microseconds.
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            if let Some(hwm) = hwm {
                peak = peak.max(hwm);
            }
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    (peak, child.wait_with_output().expect("output"))
}

/// `mailtriage triage FILE` reads at most the parse limit of each message (mbox files
/// are streamed), so its peak memory above a tiny message's stays within a few parse
/// limits — not the size of the file. The bound: the raw prefix (1 limit), its prepared
/// copy (1), the parser's decoded parts (≤ 1), plus the text and its split and
/// lowercased copies (a few × `max_scan_bytes`): 6 × the parse limit leaves room for the
/// allocator's slack. Before streaming, the 50 MB message alone cost ~100 MB.
#[test]
fn peak_rss_stays_bounded_by_the_parse_limit() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("hostile: no /proc, peak RSS not measured");
        return;
    }
    let files = big_files();
    let triage_json = |path: &Path, expect: usize| {
        let file = path.to_str().expect("utf-8 path").to_string();
        let (peak, out) = peak_rss_kib(&[
            "triage",
            &file,
            "--profile",
            "profiles/hottub.yaml",
            "--format",
            "json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let decisions: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON decision per line"))
            .collect();
        assert_eq!(decisions.len(), expect, "decisions for {file}");
        assert!(decisions.iter().all(|d| d["category"].is_string()));
        peak
    };
    // The baseline: the same command on a tiny message (binary, profile, rule packs).
    let baseline = (0..3)
        .map(|_| triage_json(&files.tiny, 1))
        .min()
        .expect("three runs");
    let limit_kib = (parse_limit(DEFAULT_MAX_SCAN_BYTES) / 1024) as u64;
    let bound = 6 * limit_kib;
    eprintln!(
        "hostile: peak RSS baseline {baseline} KiB; bound baseline + {bound} KiB (6 × parse limit {limit_kib} KiB)"
    );
    let mut over = Vec::new();
    for (name, path, count) in [
        ("50 MB attachment", &files.attachment_50mb, 1),
        ("10 MB single-line body", &files.single_line_10mb, 1),
        ("5,000 parts", &files.parts_5000, 1),
        ("mbox with the 50 MB message", &files.mbox_50mb, 2),
        ("1 MiB of tiny header fields", &files.header_storm_1mib, 1),
        ("1 MiB To: of tiny addresses", &files.address_storm_1mib, 1),
    ] {
        let size = std::fs::metadata(path).expect("stat").len();
        let peak = triage_json(path, count);
        let delta = peak.saturating_sub(baseline);
        eprintln!(
            "hostile: peak RSS {name:<28} file {:>6} KiB  peak {peak:>6} KiB  +{delta:>5} KiB",
            size / 1024
        );
        if delta > bound {
            over.push(format!(
                "{name}: +{delta} KiB over the baseline (bound {bound} KiB)"
            ));
        }
    }
    assert!(over.is_empty(), "{}", over.join("\n"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Random sequences of mail-structure fragments (see `hostile_gen::FRAGMENTS`), run in
    /// a debug build so the parser's own overflow checks and debug assertions are armed.
    #[test]
    fn glued_structure_fragments_get_a_decision_on_a_worker_stack(
        picks in proptest::collection::vec(0..hostile_gen::FRAGMENTS.len(), 0..300),
        repeat in 1usize..40,
    ) {
        let mut raw = Vec::new();
        for (i, &pick) in picks.iter().enumerate() {
            let times = if i % 7 == 0 { repeat } else { 1 };
            for _ in 0..times {
                raw.extend_from_slice(hostile_gen::FRAGMENTS[pick].as_bytes());
            }
        }
        let o = run_on_worker_stack("fragments", Arc::new(raw), 4096);
        prop_assert!(!o.decision.category.is_empty());
        prop_assert!(o.view.text.len() <= 4096);
    }
}

// Regressions: each bug the hostile suite found, named after it (see the commit log).

/// Parses on a worker-sized stack (where the daemon parses) and returns the view.
fn view_on_worker_stack(raw: Vec<u8>) -> MessageView {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(move || MessageView::parse(&raw, DEFAULT_MAX_SCAN_BYTES))
        .expect("spawn")
        .join()
        .expect("parse does not panic")
}

#[test]
fn regression_forwarded_message_chain_overflowed_a_worker_stack() {
    // ~33,000 levels of message/rfc822 in 1 MiB: mail-parser dropped the nested tree
    // recursively and aborted the process (debug: from ~7,000 levels; release: ~30,000).
    let v = view_on_worker_stack(hostile_gen::minimal_rfc822_chain(1024 * 1024));
    assert_eq!(v.subject, "chain");
}

#[test]
fn regression_forwarded_chain_inside_base64_overflowed_the_parser() {
    // One base64 message/rfc822 part whose content is a 3,000-deep chain (124 KB, under
    // max_scan_bytes, so the daemon fetched it whole): mail-parser's recursive
    // `into_owned` overflowed 2 MiB in release builds (debug: from ~1,000 levels).
    let v = view_on_worker_stack(hostile_gen::rfc822_chain_inside_base64(3_000));
    assert_eq!(v.subject, "forwarded");
}

#[test]
fn regression_digest_then_rfc822_tripped_a_parser_debug_assertion() {
    // mail-parser 0.11.9 src/parsers/message.rs:485 `debug_assert!(false, "Invalid part
    // ID, could not find multipart.")`: a panic in debug builds (our tests), silent in
    // release. Found by gluing random structure fragments; minimised to this.
    let raw = b"Content-Type: multipart/digest; boundary=a\r\n\r\n--a--\r\n\r\nContent-Type: message/rfc822\r\n\n\n--a--\r\n";
    let v = view_on_worker_stack(raw.to_vec());
    assert!(v.text.len() < 100);
}

#[test]
fn regression_content_type_parameter_storm_was_quadratic() {
    // 24,000 parameters plus 24,000 RFC 2231 continuations in one Content-Type (1 MiB):
    // mail-parser merged them in quadratic time, 13 s in a debug build.
    let raw = hostile_gen::parameter_storm(24_000);
    assert!(raw.len() > 1_000_000);
    let start = Instant::now();
    let v = view_on_worker_stack(raw);
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    assert!(v.text.contains(hostile_gen::NEEDLE));
    assert!(v.repairs.contains(&mailtriage::mail::Repair::LongField));
}

#[test]
fn regression_unterminated_multipart_lost_its_text() {
    // A text part whose closing delimiter never comes (a truncated message, or one cut
    // at the parse limit) was left out of the body: the view had no text at all.
    let v = view_on_worker_stack(hostile_gen::nested_multipart(3, false));
    assert_eq!(v.text.trim(), hostile_gen::NEEDLE);
    assert!(v.repairs.contains(&mailtriage::mail::Repair::FirstTextPart));
}

#[test]
fn regression_declared_boundary_never_used_hid_the_text() {
    // The shape of sample-mail/58: the declared boundary never appears, the parts use
    // another. The view read nothing; now it splits on the boundary actually used and
    // reads the text part only (no MIME lines, no HTML).
    let raw = std::fs::read(super::root().join("sample-mail/58-malformed-broken-boundary.eml"))
        .expect("sample 58");
    let v = view_on_worker_stack(raw);
    assert!(v.text.starts_with("Hi,"), "{:?}", v.text);
    assert!(v.text.contains("replacement part"));
    assert!(
        !v.text.contains("Content-Type") && !v.text.contains("<div>"),
        "{:?}",
        v.text
    );
    assert!(v
        .repairs
        .contains(&mailtriage::mail::Repair::GuessedBoundary));
}

#[test]
fn regression_multipart_without_boundary_lost_its_text() {
    let raw = format!(
        "Subject: s\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\n{}\r\n--x--\r\n",
        hostile_gen::NEEDLE
    );
    let v = view_on_worker_stack(raw.into_bytes());
    assert_eq!(v.text.trim(), hostile_gen::NEEDLE);
}

#[test]
fn regression_utf16_in_the_other_byte_order_was_noise() {
    // Big-endian UTF-16 labelled "utf-16" without a BOM (RFC 2781's default) was decoded
    // little-endian by mail-parser: CJK noise instead of the words.
    let mut body = Vec::new();
    for u in hostile_gen::NEEDLE.encode_utf16() {
        body.extend_from_slice(&u.to_be_bytes());
    }
    let mut raw = b"Subject: s\r\nContent-Type: text/plain; charset=utf-16\r\n\r\n".to_vec();
    raw.extend_from_slice(&body);
    let v = view_on_worker_stack(raw);
    assert_eq!(v.text, hostile_gen::NEEDLE);
    assert!(v
        .repairs
        .contains(&mailtriage::mail::Repair::Utf16ByteOrder));
}

#[test]
fn regression_blank_lines_before_the_header_hid_sender_and_subject() {
    // Exporters sometimes leave blank lines first: the whole message, header included,
    // became body text, so the sender and the To: address could not route it.
    let raw = b"\r\n \r\nFrom: Pat <pat@example.com>\r\nTo: mark@hottubman.ca\r\nSubject: Quote\r\n\r\nHello\r\n";
    let v = view_on_worker_stack(raw.to_vec());
    assert_eq!(v.from_address(), Some("pat@example.com"));
    assert_eq!(v.subject, "Quote");
    assert_eq!(v.text.trim(), "Hello");
}

#[test]
fn regression_bare_cr_message_was_one_header_line() {
    let raw = b"From: Pat <pat@example.com>\rSubject: Quote\r\rHello there\r";
    let v = view_on_worker_stack(raw.to_vec());
    assert_eq!(v.subject, "Quote");
    assert_eq!(v.text.trim(), "Hello there");
}

#[test]
fn regression_thousands_of_parts_were_all_parsed() {
    // mail-parser spends ~3 KB per part: 5,000 parts in under 1 MB cost 15 MB of memory
    // (peak_rss_stays_bounded_by_the_parse_limit measures it); the message is now read
    // up to the structure budget, and says so.
    let v = view_on_worker_stack(hostile_gen::many_parts(5_000, "mixed", true));
    assert!(v.text.contains(hostile_gen::NEEDLE));
    assert!(v.truncated);
    assert!(v.repairs.contains(&mailtriage::mail::Repair::TooManyParts));
}

#[test]
fn regression_megabyte_subject_was_kept_whole() {
    // It went into every log line and every explanation.
    let v = view_on_worker_stack(hostile_gen::long_header_line(1_000_000, "Subject"));
    assert!(v.subject.len() <= mailtriage::mail::MAX_SUBJECT_BYTES);
    assert!(v.truncated);
}

#[test]
fn regression_forwarded_only_message_had_no_text() {
    // "Forward as attachment" with no comment: the text is inside the message/rfc822
    // part, and the view had none.
    let v = view_on_worker_stack(hostile_gen::nested_rfc822(3));
    assert_eq!(v.text.trim(), hostile_gen::NEEDLE);
    assert!(v
        .repairs
        .contains(&mailtriage::mail::Repair::ForwardedMessage));
}

#[test]
fn attachment_cut_at_the_parse_limit_is_not_read_as_text() {
    // The salvage reads declared text only: a base64 PDF cut short stays an attachment.
    let v = view_on_worker_stack(hostile_gen::text_after_attachment(2 * 1024 * 1024));
    assert!(v.text.is_empty(), "{:?}", &v.text[..v.text.len().min(80)]);
    assert!(v.truncated);
}
