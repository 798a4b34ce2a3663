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
    assert!(v.repairs.contains(&mailtriage::mail::Repair::LongField));
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
fn regression_forwarded_only_message_had_no_text() {
    // "Forward as attachment" with no comment: the text is inside the message/rfc822
    // part, and the view had none.
    let v = view_on_worker_stack(hostile_gen::nested_rfc822(3));
    assert_eq!(v.text.trim(), hostile_gen::NEEDLE);
    assert!(v
        .repairs
        .contains(&mailtriage::mail::Repair::ForwardedMessage));
}
