//! Invalid profiles: each fixture in tests/fixtures/invalid/ snapshots the exact error text
//! the owner sees (every problem, with file:line:column, key path, what was expected and a
//! "did you mean"). Regenerate with `MAILTRIAGE_BLESS=1 cargo test --test core invalid`.

use mailtriage::profile::Profile;

use super::{blessing, root};

fn check(name: &str) {
    let label = format!("tests/fixtures/invalid/{name}.yaml");
    let bytes = std::fs::read(root().join(&label)).expect("fixture exists");
    let err = match Profile::from_bytes(&label, &bytes) {
        Ok(_) => panic!("{label} must be rejected"),
        Err(e) => e.to_string(),
    };
    let snap = root().join(format!("tests/fixtures/invalid/{name}.expected.txt"));
    if blessing() {
        std::fs::write(&snap, &err).expect("write snapshot");
        return;
    }
    let want = std::fs::read_to_string(&snap).unwrap_or_default();
    assert_eq!(
        err,
        want,
        "\n--- expected ({})\n{want}\n--- actual\n{err}",
        snap.display()
    );
}

#[test]
fn yaml_syntax_error() {
    check("syntax");
}

#[test]
fn unknown_keys_all_reported_with_suggestions() {
    check("unknown-keys");
}

#[test]
fn wrong_kinds_of_values() {
    check("wrong-types");
}

#[test]
fn every_semantic_problem_at_once() {
    check("semantic");
}

#[test]
fn alias_bomb_is_refused() {
    check("alias-bomb");
}

#[test]
fn invalid_utf8() {
    check("not-utf8");
}

#[test]
fn empty_file() {
    check("empty");
}

#[test]
fn problems_carry_line_and_column() {
    let bytes =
        std::fs::read(root().join("tests/fixtures/invalid/semantic.yaml")).expect("fixture");
    let err = Profile::from_bytes("semantic.yaml", &bytes).expect_err("rejected");
    assert!(
        err.diagnostics.len() >= 12,
        "all problems reported, got {}",
        err.diagnostics.len()
    );
    for d in &err.diagnostics {
        assert!(d.loc.line > 0 && d.loc.column > 0, "no location: {d}");
    }
}

#[test]
fn alerts_acknowledgements_and_digests_are_checked() {
    check("notices");
}
