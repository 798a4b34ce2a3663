//! SPEC §13 "bad input loses nothing": hostile messages (see `hostile_gen`) go through
//! `MessageView::parse` on a thread with the 2 MiB stack of a tokio worker, where the
//! daemon triages (a stack overflow there aborts the whole process, so it is tested, not
//! assumed). Each bug found is a regression test named after it.

use std::time::{Duration, Instant};

use mailtriage::mail::{MessageView, DEFAULT_MAX_SCAN_BYTES};

use super::hostile_gen;

/// The stack of a tokio worker thread.
const WORKER_STACK: usize = 2 << 20;

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
