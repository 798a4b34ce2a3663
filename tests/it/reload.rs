//! Hot reload: profile edits take effect within a second, invalid edits keep the old
//! profile and report file:line:column, editors that save by rename keep working,
//! SIGHUP reloads, and accounts added or removed in mailtriage.yaml apply live.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::daemon::{message, root, wait_count, Conf, Daemon, Setup};
use super::harness::{poll, signal, Dovecot, DovecotOptions, TempDir};

/// A Maildir tree (plain directories, no server needed) and a writable copy of the hottub profile.
struct Bed {
    _dir: TempDir,
    tree: PathBuf,
    profile: PathBuf,
    setup: Setup,
}

fn bed() -> Bed {
    let dir = TempDir::new("mt-reload");
    let tree = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(tree.join(sub)).expect("maildir");
    }
    let profile = dir.path().join("profiles/hottub.yaml");
    std::fs::create_dir_all(profile.parent().expect("parent")).expect("mkdir");
    std::fs::copy(root().join("profiles/hottub.yaml"), &profile).expect("copy profile");
    let setup = Setup::maildir(&tree, &profile, "    poll_interval: 60s\n");
    Bed {
        _dir: dir,
        tree,
        profile,
        setup,
    }
}

/// Drops a message into the tree's new/ and returns its unique name.
fn drop_mail(tree: &Path, id: &str, subject: &str, body: &str) -> String {
    let name = format!("{}.{id}.test", std::process::id());
    std::fs::write(tree.join("new").join(&name), message(id, subject, body)).expect("deliver");
    name
}

/// The folder (as Maildir++ directory name) now holding the message, if filed.
fn filed_in(tree: &Path, name: &str) -> Option<String> {
    for e in std::fs::read_dir(tree).ok()?.flatten() {
        let dir = e.file_name().to_string_lossy().into_owned();
        // The escalation copy of URGENT mail (`copy_to: ESCALATED`) is not where it was filed.
        if !dir.starts_with('.') || dir == ".ESCALATED" {
            continue;
        }
        if let Ok(rd) = std::fs::read_dir(e.path().join("cur")) {
            if rd
                .flatten()
                .any(|f| f.file_name().to_string_lossy().starts_with(name))
            {
                return Some(dir);
            }
        }
    }
    None
}

fn wait_filed(tree: &Path, name: &str, d: &Daemon) -> String {
    poll(Duration::from_secs(10), || filed_in(tree, name))
        .unwrap_or_else(|| panic!("{name} not filed:\n{}", d.log()))
}

/// Writes a file the way vim and VS Code do: a temporary file renamed over the original.
fn save_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp~");
    std::fs::write(&tmp, text).expect("write temp");
    std::fs::rename(&tmp, path).expect("rename over");
}

const ZEBRA_RULE: &str = "  URGENT:\n    keywords: {no heat: 1.5, zebra: 5.0}\n";

#[test]
fn a_valid_edit_takes_effect_within_a_second() {
    let b = bed();
    let daemon = b.setup.start(&[]);
    assert!(
        daemon.wait_log("watching Maildir", Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    let before = drop_mail(&b.tree, "z1", "Question", "Do you have zebra print covers?");
    assert_eq!(
        wait_filed(&b.tree, &before, &daemon),
        ".SUPPORT.Sarah Williams"
    );
    let text = std::fs::read_to_string(&b.profile)
        .expect("read")
        .replace("  URGENT:\n    keywords: {no heat: 1.5}\n", ZEBRA_RULE);
    let saved = Instant::now();
    std::fs::write(&b.profile, text).expect("edit");
    let took = poll(Duration::from_secs(5), || {
        daemon
            .log()
            .contains("profile reloaded")
            .then(|| saved.elapsed())
    })
    .unwrap_or_else(|| panic!("no reload:\n{}", daemon.log()));
    assert!(took < Duration::from_secs(1), "reload took {took:?}");
    let after = drop_mail(&b.tree, "z2", "Question", "Do you have zebra print covers?");
    assert_eq!(
        wait_filed(&b.tree, &after, &daemon),
        ".URGENT.Sarah Williams",
        "the next message uses the new rules"
    );
    // Each decision records the profile version it was made with.
    let versions = std::process::Command::new(env!("CARGO_BIN_EXE_mailtriage"))
        .args(["history", "--format", "json", "--state"])
        .arg(&b.setup.state)
        .output()
        .expect("history");
    let text = String::from_utf8_lossy(&versions.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
}

#[test]
fn invalid_edits_keep_the_old_profile_and_say_where() {
    let b = bed();
    let daemon = b.setup.start(&[]);
    assert!(daemon.wait_log("watching Maildir", Duration::from_secs(10)));
    let good = std::fs::read_to_string(&b.profile).expect("read");
    let cases = [
        (
            "syntax",
            good.replace(
                "roles: [sales_manager, operations_manager]",
                "roles: [sales_manager, operations_manager",
            ),
            "YAML syntax",
        ),
        (
            "unknown role",
            good.replace(
                "roles: [sales_manager, operations_manager]",
                "roles: [sales_manger, operations_manager]",
            ),
            "did you mean `sales_manager`",
        ),
        (
            "bad regex",
            good.replace(
                "  URGENT:\n    keywords: {no heat: 1.5}\n",
                "  URGENT:\n    keywords: {no heat: 1.5}\n    patterns: {'(unclosed': 1.0}\n",
            ),
            "invalid regular expression",
        ),
    ];
    for (i, (what, text, needle)) in cases.iter().enumerate() {
        let before = daemon
            .log()
            .matches("the previous version stays in force")
            .count();
        save_by_rename(&b.profile, text);
        let rejected = poll(Duration::from_secs(5), || {
            (daemon
                .log()
                .matches("the previous version stays in force")
                .count()
                > before)
                .then_some(())
        });
        assert!(rejected.is_some(), "{what}: not rejected\n{}", daemon.log());
        let log = daemon.log();
        assert!(log.contains(needle), "{what}: {needle:?} missing\n{log}");
        assert!(
            log.contains("hottub.yaml:"),
            "{what}: no file:line:column\n{log}"
        );
        // Mail keeps flowing under the old rules.
        let name = drop_mail(
            &b.tree,
            &format!("inv{i}"),
            "Quote",
            "A quote for a new hot tub please",
        );
        assert_eq!(
            wait_filed(&b.tree, &name, &daemon),
            ".SALES.Mark Johnson",
            "{what}"
        );
    }
}

#[test]
fn save_by_rename_works_again_and_again() {
    let b = bed();
    let daemon = b.setup.start(&[]);
    assert!(daemon.wait_log("watching Maildir", Duration::from_secs(10)));
    let base = std::fs::read_to_string(&b.profile).expect("read");
    for (i, word) in ["alpha", "bravo", "charlie"].iter().enumerate() {
        let text = base.replace(
            "  URGENT:\n    keywords: {no heat: 1.5}\n",
            &format!("  URGENT:\n    keywords: {{no heat: 1.5, {word}: 5.0}}\n"),
        );
        let n = daemon.log().matches("profile reloaded").count();
        save_by_rename(&b.profile, &text);
        assert!(
            poll(Duration::from_secs(5), || (daemon
                .log()
                .matches("profile reloaded")
                .count()
                > n)
                .then_some(()))
            .is_some(),
            "save {i} not noticed:\n{}",
            daemon.log()
        );
        let name = drop_mail(
            &b.tree,
            &format!("r{i}"),
            "Hello",
            &format!("a {word} question"),
        );
        assert_eq!(
            wait_filed(&b.tree, &name, &daemon),
            ".URGENT.Sarah Williams",
            "save {i}"
        );
    }
}

#[test]
fn sighup_reloads_through_the_same_path() {
    let b = bed();
    let mut daemon = b.setup.start(&[]);
    assert!(daemon.wait_log("watching Maildir", Duration::from_secs(10)));
    assert!(signal(daemon.pid(), 1));
    assert!(
        daemon.wait_log("reloading configuration (SIGHUP)", Duration::from_secs(5)),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.wait_log("configuration reloaded", Duration::from_secs(5)),
        "{}",
        daemon.log()
    );
    assert!(daemon.running());
    assert_eq!(
        daemon.term(Duration::from_secs(10)).map(|s| s.success()),
        Some(true)
    );
}

#[test]
fn accounts_added_and_removed_live_against_dovecot() {
    let d = Dovecot::start(DovecotOptions::default());
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "ALICE_PW",
            extra: "",
        },
    );
    let env = [("ALICE_PW", "alicepw"), ("BOB_PW", "bobpw")];
    let daemon = s.start(&env);
    assert!(
        daemon.wait_log("connected", Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    let original = std::fs::read_to_string(&s.config).expect("config");
    let bob = format!(
        "  - name: bob\n    profile: {}\n    backfill: all\n    imap: {{host: 127.0.0.1, port: {}, tls: none, user: bob, password: {{env: BOB_PW}}}}\n",
        root().join("profiles/hottub.yaml").display(),
        d.port()
    );
    save_by_rename(&s.config, &format!("{original}{bob}"));
    assert!(
        daemon.wait_log(
            "account added to the configuration; starting it",
            Duration::from_secs(5)
        ),
        "{}",
        daemon.log()
    );
    d.deliver(
        "bob",
        "INBOX",
        &message("bob1", "Quote", "A quote for a new hot tub please"),
    );
    assert!(
        wait_count(&d, "bob", "SALES/Mark Johnson", 1, Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    // alice keeps working, untouched.
    d.deliver(
        "alice",
        "INBOX",
        &message("alice1", "Quote", "A quote for a new hot tub please"),
    );
    assert!(
        wait_count(
            &d,
            "alice",
            "SALES/Mark Johnson",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.log().matches("account settings changed").count(), 0);
    // Remove alice: she stops; bob continues.
    let header = original.split("  - name: test").next().unwrap_or_default();
    let only_bob = format!("{header}{bob}");
    save_by_rename(&s.config, &only_bob);
    assert!(
        daemon.wait_log(
            "account removed from the configuration; stopping it",
            Duration::from_secs(5)
        ),
        "{}",
        daemon.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    d.deliver(
        "alice",
        "INBOX",
        &message("alice2", "Quote", "Another quote please"),
    );
    d.deliver(
        "bob",
        "INBOX",
        &message("bob2", "Quote", "Another quote please"),
    );
    assert!(
        wait_count(&d, "bob", "SALES/Mark Johnson", 2, Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    assert_eq!(
        d.messages("alice", "INBOX").len(),
        1,
        "alice is no longer watched"
    );
}
