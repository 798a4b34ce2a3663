//! Every message in sample-mail/ through every shipped profile, compared with the expected
//! decisions stored beside it (`NN-slug.expected.json`, one decision per profile).
//! Each message also runs with the other line ending (LF ↔ CRLF) and must decide the same.
//! Regenerate with `MAILTRIAGE_BLESS=1 cargo test --test core sample_mail`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mailtriage::mail::MessageView;
use mailtriage::profile::Profile;
use mailtriage::triage::{triage, Context};
use serde_json::Value;

use super::{blessing, root};

fn profiles() -> Vec<(String, Profile)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("profiles")).expect("profiles/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("utf-8 name")
                .to_string();
            let p = Profile::load(&path)
                .unwrap_or_else(|e| panic!("{} must compile:\n{e}", path.display()));
            out.push((name, p));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn messages() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("sample-mail"))
        .expect("sample-mail/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    out.sort();
    out
}

/// The decision for `raw`; the daemon's lighter view of the message (only the new text)
/// must decide exactly the same.
fn decide(raw: &[u8], profile: &Profile) -> Value {
    let view = MessageView::parse(raw, 256 * 1024);
    let decision = serde_json::to_value(triage(&view, profile, &Context::default()))
        .expect("decision serializes");
    let lean = MessageView::parse_for_triage(raw, 256 * 1024);
    let daemon = serde_json::to_value(triage(&lean, profile, &Context::default()))
        .expect("decision serializes");
    assert_eq!(decision, daemon, "the daemon's view decides differently");
    decision
}

/// The same bytes with the other line-ending convention.
fn flip_line_endings(raw: &[u8]) -> Vec<u8> {
    let crlf = raw.windows(2).any(|w| w == b"\r\n");
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    let mut i = 0;
    while i < raw.len() {
        match (raw[i], crlf) {
            (b'\r', true) if raw.get(i + 1) == Some(&b'\n') => {}
            (b'\n', false) => out.extend_from_slice(b"\r\n"),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    out
}

fn expected_path(eml: &Path) -> PathBuf {
    let stem = eml
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("utf-8 name");
    eml.with_file_name(format!("{stem}.expected.json"))
}

#[test]
fn corpus_is_big_enough() {
    assert!(
        messages().len() >= 40,
        "sample-mail/ must hold at least 40 messages"
    );
}

#[test]
fn every_sample_routes_as_expected_with_both_line_endings() {
    let profiles = profiles();
    assert!(
        profiles.len() >= 3,
        "hottub, solo and clinic profiles are shipped"
    );
    let mut failures = Vec::new();
    for eml in messages() {
        let raw = std::fs::read(&eml).expect("readable");
        let mut actual: BTreeMap<String, Value> = BTreeMap::new();
        for (name, profile) in &profiles {
            let d = decide(&raw, profile);
            let flipped = decide(&flip_line_endings(&raw), profile);
            if d != flipped {
                failures.push(format!(
                    "{} [{name}]: decision changes with line endings\n  as stored: {d}\n  flipped:   {flipped}",
                    eml.display()
                ));
            }
            actual.insert(name.clone(), d);
        }
        let path = expected_path(&eml);
        let actual_text = serde_json::to_string_pretty(&actual).expect("serializes") + "\n";
        if blessing() {
            std::fs::write(&path, &actual_text).expect("write expectation");
            continue;
        }
        let expected_text = std::fs::read_to_string(&path).unwrap_or_default();
        let expected: BTreeMap<String, Value> =
            serde_json::from_str(&expected_text).unwrap_or_default();
        for (name, got) in &actual {
            match expected.get(name) {
                Some(want) if want == got => {}
                Some(want) => failures.push(format!(
                    "{} [{name}]:\n  expected: {}\n  actual:   {}",
                    eml.display(),
                    summary(want),
                    summary(got)
                )),
                None => failures.push(format!(
                    "{} [{name}]: no expectation stored (run with MAILTRIAGE_BLESS=1 and review the diff)",
                    eml.display()
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The decision's headline, then its full JSON, for a readable mismatch report.
fn summary(d: &Value) -> String {
    let field = |k: &str| d.get(k).map(|v| v.to_string()).unwrap_or_default();
    format!(
        "{} → {} ({}), escalation {}\n            full: {d}",
        field("category"),
        field("recipient"),
        field("reason"),
        d.get("escalation")
            .and_then(|e| e.get("level"))
            .map(|l| l.to_string())
            .unwrap_or_else(|| "none".into()),
    )
}

#[test]
fn flipping_line_endings_round_trips() {
    let lf = b"A: b\nC: d\n\nbody\n".to_vec();
    let crlf = flip_line_endings(&lf);
    assert_eq!(crlf, b"A: b\r\nC: d\r\n\r\nbody\r\n".to_vec());
    assert_eq!(flip_line_endings(&crlf), lf);
}
