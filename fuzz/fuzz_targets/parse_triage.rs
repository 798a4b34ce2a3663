//! Mail is data, never an error: arbitrary bytes → `MessageView::parse` → `triage` with
//! the shipped hottub profile must not panic, must give a category, a folder that is safe
//! on the server, a decision that serialises, and an explanation that renders.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailtriage::mail::{MessageView, DEFAULT_MAX_SCAN_BYTES};
use mailtriage::profile::Profile;
use mailtriage::triage::{explain, triage, Context};

#[path = "../../tests/core/folder_invariants.rs"]
#[allow(dead_code)] // shared with the tests; this target checks folders only
mod folder_invariants;

fn profile() -> &'static Profile {
    static P: OnceLock<Profile> = OnceLock::new();
    P.get_or_init(|| {
        match Profile::from_bytes(
            "profiles/hottub.yaml",
            include_bytes!("../../profiles/hottub.yaml"),
        ) {
            Ok(p) => p,
            Err(e) => panic!("the shipped profile must compile: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let p = profile();
    let ctx = Context {
        account_addresses: vec!["info@hottubman.ca".to_string()],
        ..Context::default()
    };
    let msg = MessageView::parse(data, DEFAULT_MAX_SCAN_BYTES);
    let d = triage(&msg, p, &ctx);
    assert!(!d.category.is_empty(), "a decision always has a category");
    if let Some(path) = &d.folder_path {
        assert!(!path.is_empty(), "a destination has at least one level");
        for delimiter in ['/', '.'] {
            if let Err(e) =
                folder_invariants::check_server_name(path, Some(delimiter), false, false)
            {
                panic!("unsafe folder for {path:?}: {e}");
            }
        }
    }
    if let Err(e) = serde_json::to_string(&d) {
        panic!("decision does not serialise: {e}");
    }
    let _ = explain::render(&msg, &d);
});
