//! Tests of the triage core, profiles and the offline CLI — no mail server involved.

mod booking;
mod cli;
#[path = "../common/feed.rs"]
mod feed;
mod folder_invariants;
mod fuzz_props;
mod hostile;
mod hostile_gen;
mod hostile_yaml;
mod invalid_profiles;
mod no_panic;
mod packs;
mod rules;
mod sample_mail;
mod spec_examples;

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when expectations should be rewritten instead of compared.
pub fn blessing() -> bool {
    std::env::var_os("MAILTRIAGE_BLESS").is_some_and(|v| v == "1")
}
