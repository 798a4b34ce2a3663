//! Mail is data, never an error: arbitrary bytes through parse + triage never panic, and
//! always produce a decision with a destination or an explicit "leave in place".

use mailtriage::mail::MessageView;
use mailtriage::profile::Profile;
use mailtriage::triage::{triage, Context};
use proptest::prelude::*;

fn profile() -> Profile {
    Profile::load(&super::root().join("profiles/hottub.yaml")).expect("hottub compiles")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_get_a_decision(raw in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let p = profile();
        let d = triage(&MessageView::parse(&raw, 4096), &p, &Context::default());
        prop_assert!(!d.category.is_empty());
    }

    #[test]
    fn mail_shaped_noise_gets_a_decision(
        headers in proptest::collection::vec("[A-Za-z-]{1,12}: [ -~]{0,60}", 0..12),
        body in "(?s).{0,2000}",
        crlf in any::<bool>(),
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let raw = format!("{}{nl}{nl}{body}", headers.join(nl));
        let p = profile();
        let d = triage(&MessageView::parse(raw.as_bytes(), 1 << 16), &p, &Context::default());
        prop_assert!(!d.category.is_empty());
    }
}

#[test]
fn hostile_shapes_get_a_decision() {
    let p = profile();
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\xef\xbb\xbfSubject: bom\r\n\r\nhello".to_vec(),
        b"\r\n\r\n\r\nSubject: blank lines first\r\n\r\nbody".to_vec(),
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nunterminated".to_vec(),
        b"Subject: =?utf-16?B?//5IAGkA?=\r\nContent-Type: text/plain; charset=utf-16\r\n\r\n\xff\xfeH\x00i\x00".to_vec(),
        b"Subject: nul\x00bytes\r\n\r\nbody\x00with\x00nuls".to_vec(),
    ];
    let mut nested = String::from("Subject: deep\r\n");
    for i in 0..200 {
        nested.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    nested.push_str("Content-Type: text/plain\r\n\r\nquote for a new hot tub\r\n");
    cases.push(nested.into_bytes());
    let long_header = format!("Subject: {}\r\n\r\nbody", "=?utf-8?q?a?= ".repeat(20_000));
    cases.push(long_header.into_bytes());
    for raw in cases {
        let d = triage(&MessageView::parse(&raw, 1 << 18), &p, &Context::default());
        assert!(!d.category.is_empty());
    }
}
