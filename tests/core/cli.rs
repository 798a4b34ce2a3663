//! The offline CLI as a user runs it: exit codes, the check preview, explain and triage.

use std::process::{Command, Output};

use super::root;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailtriage"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("mailtriage runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_prints_each_members_responsibilities() {
    let o = run(&["check", "profiles/hottub.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "Email routing for Mark Johnson <mark@hottubman.ca>",
        "SALES mail → SALES/Mark Johnson",
        "MANAGER mail when their roles score highest → MANAGER/Mark Johnson",
        "Email routing for Sarah Williams",
        "URGENT mail → URGENT/Sarah Williams",
        "\"Mark\" (capitalised)",
        "\"sales rep\"",
        "fallback: MANAGER mail no role matched",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn check_names_the_packs_in_force_and_where_each_word_comes_from() {
    let o = run(&["check", "profiles/hottub.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Rules: base (") && out.contains(" + hot_tubs ("),
        "the preview names the packs:\n{out}"
    );
    assert!(
        out.contains("flooded (hot_tubs)"),
        "industry words say so in the preview:\n{out}"
    );

    let o = run(&["check", "--words", "profiles/hottub.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let line = |word: &str, section: &str| -> String {
        let from = out
            .find(section)
            .unwrap_or_else(|| panic!("no {section:?}:\n{out}"));
        out[from..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .find(|l| {
                let rest: Vec<&str> = l.split_whitespace().skip(1).collect();
                rest.join(" ").starts_with(&format!("{word} "))
            })
            .unwrap_or_else(|| panic!("{word:?} not listed under {section:?}:\n{out}"))
            .to_string()
    };
    let flooded = line("flooded", "Category URGENT");
    assert!(flooded.trim_end().ends_with("hot_tubs"), "{flooded}");
    let emergency = line("emergency", "Category URGENT");
    assert!(emergency.trim_end().ends_with("base"), "{emergency}");
    let own = line("no heat", "Category URGENT");
    assert!(own.trim_end().ends_with("profile"), "{own}");
    let lawyer = line("attorney", "Escalation keywords");
    assert!(lawyer.trim_end().ends_with("URGENT"), "{lawyer}");

    let dir = std::env::temp_dir().join(format!("mailtriage-noindustry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let solo = std::fs::read_to_string(root().join("profiles/solo.yaml")).expect("solo profile");
    let plain = dir.join("plain.yaml");
    std::fs::write(&plain, solo.replace("industry: hot_tubs", "")).expect("write profile");
    let o = run(&["check", "--words", plain.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("only the business-neutral base") && !out.contains("hot_tubs"),
        "a profile without business.industry gets only the base:\n{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_without_arguments_checks_every_shipped_profile() {
    let o = run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for p in [
        "profiles/clinic.yaml: OK",
        "profiles/hottub.yaml: OK",
        "profiles/solo.yaml: OK",
    ] {
        assert!(out.contains(p), "missing {p:?}");
    }
}

#[test]
fn invalid_profile_exits_1_with_every_problem_located() {
    let o = run(&["check", "tests/fixtures/invalid/semantic.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("tests/fixtures/invalid/semantic.yaml:7:13"),
        "{err}"
    );
    assert!(err.contains("did you mean `sales_manager`?"), "{err}");
    assert!(err.contains("problems found"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(run(&["triage"]).status.code(), Some(2));
    assert_eq!(run(&["explain"]).status.code(), Some(2));
}

#[test]
fn explain_text_shows_keywords_weights_roles_and_margin() {
    let o = run(&[
        "explain",
        "sample-mail/05-commercial-partnership-bulk-service.eml",
        "--profile",
        "profiles/hottub.yaml",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "Decision  MANAGER → Mark Johnson  ⇒  folder MANAGER/Mark Johnson",
        "manager_multiple_roles_matched",
        "sales_manager 2 (\"bulk\" 1, \"commercial\" 1)",
        "operations_manager 1 (\"partnership\" 1)",
        "service_manager 1.2 (\"service\" 1×1.2)",
        "margin: 0.9 over Sarah Williams",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn explain_json_has_the_spec_shape() {
    let o = run(&[
        "explain",
        "sample-mail/04-commercial-bulk-parts-supplier.eml",
        "--profile",
        "profiles/hottub.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["category"], "MANAGER");
    assert_eq!(v["recipient"], "Mark Johnson");
    assert_eq!(v["folder"], "MANAGER/Mark Johnson");
    assert_eq!(v["reason"], "manager_multiple_roles_matched");
    assert_eq!(v["total_score"], 3.0);
    assert_eq!(v["matched_roles"][0]["role"], "sales_manager");
    assert_eq!(v["matched_roles"][0]["score"], 2.0);
    assert_eq!(
        v["matched_roles"][0]["keywords"],
        serde_json::json!(["bulk", "commercial"])
    );
    assert_eq!(v["matched_roles"][1]["role"], "operations_manager");
    assert!(v["category_scores"].is_object());
    assert!(v["escalation"].is_null());
}

#[test]
fn triage_a_directory_prints_table_and_summary() {
    let o = run(&["triage", "sample-mail", "--profile", "profiles/hottub.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("MESSAGE"), "{out}");
    assert!(out.contains("sample-mail/01-parts-supplier-vendor.eml"));
    assert!(out.contains("messages\n"));
    assert!(out.contains("  MANAGER/Mark Johnson"));
    assert!(!out.contains(".expected.json"), "only messages are triaged");
}

#[test]
fn triage_json_lines_and_mbox() {
    let dir = std::env::temp_dir().join(format!("mailtriage-mbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let mbox = dir.join("two.mbox");
    std::fs::write(
        &mbox,
        "From a@example.com Mon Mar  2 10:00:00 2026\nFrom: a@example.com\nSubject: quote\n\nA quote for a new hot tub please\n\nFrom b@example.com Mon Mar  2 11:00:00 2026\nFrom: b@example.com\nSubject: help\n\nHi Sarah, my heater is broken\n",
    )
    .expect("write mbox");
    let o = run(&[
        "triage",
        mbox.to_str().expect("utf-8"),
        "--profile",
        "profiles/hottub.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["recipient"], "Mark Johnson");
    assert_eq!(lines[1]["recipient"], "Sarah Williams");
    assert_eq!(lines[1]["reason"], "name_mention");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_file_exits_1() {
    let o = run(&[
        "explain",
        "no-such.eml",
        "--profile",
        "profiles/hottub.yaml",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no-such.eml"));
}

#[test]
fn schema_is_json_schema_of_the_profile() {
    let o = run(&["schema"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["title"], "RawProfile");
    assert!(v["properties"]["team"].is_object());
    assert_eq!(v["additionalProperties"], false);
}

#[test]
fn the_example_configuration_is_valid() {
    let o = run(&["check", "mailtriage.example.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("mailtriage.example.yaml: OK"));
}

#[test]
fn config_errors_are_located_too() {
    let dir = std::env::temp_dir().join(format!("mailtriage-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let cfg = dir.join("mailtriage.yaml");
    std::fs::write(&cfg, "accounts:\n  - name: info\n    profil: x.yaml\n    imap: {host: imap.example.com, tls: none, user: u, password: {env: P}}\n").expect("write");
    let o = run(&["check", cfg.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("mailtriage.yaml:3:5") && err.contains("did you mean `profile`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
