//! Profiles are written by people: arbitrary bytes → `Profile::from_bytes` must either
//! compile or give located errors that render, never panic, hang or blow up memory. A
//! profile that compiles must triage a few fixed messages without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtriage::mail::MessageView;
use mailtriage::profile::Profile;
use mailtriage::triage::{triage, Context};

const MESSAGES: [&[u8]; 3] = [
    b"From: Jane Doe <jane@example.com>\r\nTo: mark@hottubman.ca\r\nSubject: Quote for a new hot tub\r\n\r\nHi Mark,\r\nWhat is the price of the swim spa? Our heater is leaking and this is unacceptable.\r\n",
    b"From: orders@spa-parts-wholesale.example.com\r\nSubject: bulk pricing and partnership\r\n\r\nDear Sarah, our lawyer will call about the commercial contract.\r\n",
    b"From: list@example.org\r\nList-Id: <news.example.org>\r\nSubject: newsletter\r\n\r\nDeep tissue massage booking tomorrow?\r\n",
];

fuzz_target!(|data: &[u8]| {
    match Profile::from_bytes("fuzz.yaml", data) {
        Ok(p) => {
            for raw in MESSAGES {
                let d = triage(&MessageView::parse(raw, 1 << 16), &p, &Context::default());
                assert!(!d.category.is_empty(), "a decision always has a category");
            }
        }
        Err(e) => {
            assert!(
                !e.diagnostics.is_empty(),
                "an error names at least one problem"
            );
            let _ = e.to_string();
        }
    }
});
