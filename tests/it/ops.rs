//! Operations: Prometheus metrics, the systemd notify protocol, JSON logs, secrets that
//! never leak, history/stats against a known run, and the systemd unit.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::daemon::{backlog, message, root, wait_count, Conf, Setup};
use super::harness::{free_port, poll, signal, Dovecot, DovecotOptions, TempDir};

/// GET /metrics from a daemon's endpoint.
pub fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Sums the samples of a metric (any labels) in Prometheus text format.
fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn metrics_are_served_and_move_as_mail_is_filed() {
    let d = Dovecot::start(DovecotOptions::default());
    let port = free_port();
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "PW",
            extra: "",
        },
    );
    let cfg = std::fs::read_to_string(&s.config).expect("config");
    std::fs::write(&s.config, format!("metrics: 127.0.0.1:{port}\n{cfg}")).expect("config");
    let daemon = s.start(&[("PW", "alicepw")]);
    assert!(
        daemon.wait_log("connected", Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    let before = poll(Duration::from_secs(5), || scrape(port)).expect("metrics endpoint answers");
    assert_eq!(sum(&before, "mailtriage_messages_triaged_total"), 0.0);
    assert_eq!(sum(&before, "mailtriage_accounts"), 1.0, "{before}");
    let mut mails = backlog(5, "metrics");
    mails.push(message(
        "metrics-complaint",
        "Visit",
        "This is unacceptable. I am disappointed with the service.",
    ));
    d.deliver_many("alice", "INBOX", &mails);
    assert!(
        wait_count(&d, "alice", "INBOX", 0, Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    let after = poll(Duration::from_secs(5), || {
        scrape(port).filter(|t| sum(t, "mailtriage_messages_filed_total") == 6.0)
    })
    .unwrap_or_else(|| {
        panic!(
            "counters did not move:\n{}",
            scrape(port).unwrap_or_default()
        )
    });
    assert_eq!(sum(&after, "mailtriage_messages_triaged_total"), 6.0);
    assert!(after.contains("mailtriage_messages_triaged_total{account=\"test\",category=\"SALES\",recipient=\"Mark Johnson\",reason=\"category_role\"}"), "{after}");
    assert_eq!(
        sum(&after, "mailtriage_triage_seconds_count"),
        6.0,
        "{after}"
    );
    assert!(sum(&after, "mailtriage_filing_seconds_count") >= 1.0);
    assert!(
        after.contains("mailtriage_escalations_total{account=\"test\",level=\"HIGH\"} 1"),
        "the complaint escalates: {after}"
    );
    assert_eq!(sum(&after, "mailtriage_idle_sessions"), 1.0, "{after}");
    signal(daemon.pid(), 1);
    assert!(poll(Duration::from_secs(5), || scrape(port).filter(
        |t| t.contains("mailtriage_reloads_total{result=\"success\"} 1")
    ))
    .is_some());
    // Anything but /metrics is a 404.
    let mut s404 = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s404.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
    let mut resp = String::new();
    let _ = s404.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
}

#[cfg(target_os = "linux")]
#[test]
fn systemd_notify_ready_status_and_watchdog() {
    use std::os::unix::net::UnixDatagram;
    let dir = TempDir::new("mt-notify");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let d = Dovecot::start(DovecotOptions::default());
    d.deliver_many("alice", "INBOX", &backlog(3, "notify"));
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "PW",
            extra: "    backfill: all\n",
        },
    );
    let mut daemon = s.start(&[
        ("PW", "alicepw"),
        ("NOTIFY_SOCKET", sock_path.to_str().expect("utf-8")),
        ("WATCHDOG_USEC", "400000"),
    ]);
    let mut got: Vec<String> = Vec::new();
    let mut buf = [0u8; 4096];
    while got.iter().filter(|m| m.contains("WATCHDOG=1")).count() < 2 {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no notification ({e}); got {got:?}\n{}", daemon.log()));
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let ready = got
        .iter()
        .find(|m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY: {got:?}"));
    assert!(
        ready.contains("STATUS=1 account(s); 3 messages triaged, 3 filed"),
        "{ready}"
    );
    assert!(
        d.messages("alice", "INBOX").is_empty(),
        "READY comes after the first sync"
    );
    signal(daemon.pid(), 15);
    let stopping = poll(Duration::from_secs(10), || {
        let n = sock.recv(&mut buf).ok()?;
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        m.contains("STOPPING=1").then_some(m)
    });
    assert!(stopping.is_some(), "no STOPPING=1");
    assert_eq!(
        daemon.term(Duration::from_secs(10)).map(|s| s.success()),
        Some(true)
    );
}

#[test]
fn json_logs_one_object_per_line_with_the_decision_fields() {
    let d = Dovecot::start(DovecotOptions::default());
    d.deliver(
        "alice",
        "INBOX",
        &message("json1", "Quote", "A quote for a new hot tub please"),
    );
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "PW",
            extra: "    backfill: all\n",
        },
    );
    let cfg = std::fs::read_to_string(&s.config).expect("config").replace(
        "log: {level: \"info,mailtriage=debug\"}",
        "log: {format: json, level: info}",
    );
    std::fs::write(&s.config, cfg).expect("config");
    let (status, log) = s.run_once(&[("PW", "alicepw")]);
    assert!(status.success(), "{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let decision = lines
        .iter()
        .find(|v| v["message_id"] == "json1@test.example")
        .unwrap_or_else(|| panic!("no decision line: {log}"));
    for (k, want) in [
        ("category", "SALES"),
        ("recipient", "Mark Johnson"),
        ("dest", "SALES/Mark Johnson"),
        ("reason", "category_role"),
        ("escalation", "-"),
        ("account", "test"),
        ("folder", "INBOX"),
    ] {
        assert_eq!(decision[k], want, "{k} in {decision}");
    }
    assert!(decision["uid"].as_u64().is_some_and(|u| u > 0));
    assert_eq!(
        decision["span"]["account"], "test",
        "spans carry the account: {decision}"
    );
}

#[test]
fn passwords_never_appear_in_logs_errors_or_the_database() {
    const SECRET: &str = "S3cr3t-Pa55-9f2c";
    let d = Dovecot::start(DovecotOptions {
        users: vec![("alice".into(), SECRET.into())],
        ..DovecotOptions::default()
    });
    d.deliver_many("alice", "INBOX", &backlog(4, "secret"));
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "PW",
            extra: "    backfill: all\n",
        },
    );
    // Most verbose logging, a successful run, then a failing one.
    let (status, _) = s.run_once(&[("PW", SECRET), ("MAILTRIAGE_LOG", "trace")]);
    assert!(status.success(), "{}", s.log_text());
    let (status, _) = s.run_once(&[("PW", "wrong-9f2c"), ("MAILTRIAGE_LOG", "trace")]);
    assert!(!status.success());
    let mut places: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    places.insert("log".into(), s.log_text().into_bytes());
    for entry in std::fs::read_dir(s.state.parent().expect("state dir"))
        .expect("state dir")
        .flatten()
    {
        places.insert(
            entry.path().display().to_string(),
            std::fs::read(entry.path()).unwrap_or_default(),
        );
    }
    for cmd in [
        vec!["history", "--format", "json", "--limit", "0"],
        vec!["stats"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailtriage"))
            .args(&cmd)
            .arg("--state")
            .arg(&s.state)
            .output()
            .expect("runs");
        places.insert(cmd.join(" "), [out.stdout, out.stderr].concat());
    }
    assert!(places.len() >= 4, "{:?}", places.keys());
    for (place, bytes) in &places {
        let text = String::from_utf8_lossy(bytes);
        for secret in [SECRET, "wrong-9f2c"] {
            assert!(!text.contains(secret), "{secret} found in {place}");
        }
    }
}

#[test]
fn history_and_stats_match_a_known_run() {
    let d = Dovecot::start(DovecotOptions::default());
    let mails = vec![
        message("h1", "Quote", "A quote for a new hot tub please"),
        message("h2", "Quote", "Pricing for a new hot tub?"),
        message("h3", "Heater", "The heater is broken, please repair it"),
        message("h4", "Complaint", "This is unacceptable, I am disappointed with the service"),
        b"From: list@example.com\r\nList-Id: <l.example.com>\r\nSubject: digest\r\nMessage-ID: <h5@test.example>\r\n\r\nnews\r\n".to_vec(),
    ];
    d.deliver_many("alice", "INBOX", &mails);
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "PW",
            extra: "    backfill: all\n",
        },
    );
    assert!(
        s.run_once(&[("PW", "alicepw")]).0.success(),
        "{}",
        s.log_text()
    );
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailtriage"))
            .args(args)
            .arg("--state")
            .arg(&s.state)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let history: Vec<serde_json::Value> = run(&["history", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(history.len(), 5);
    let by_id: BTreeMap<String, &serde_json::Value> = history
        .iter()
        .map(|v| (v["message_id"].as_str().unwrap_or_default().to_string(), v))
        .collect();
    assert_eq!(by_id["h1@test.example"]["recipient"], "Mark Johnson");
    assert_eq!(by_id["h3@test.example"]["folder"], "SUPPORT/Sarah Williams");
    assert_eq!(by_id["h4@test.example"]["escalation"], "HIGH");
    assert_eq!(
        by_id["h5@test.example"]["status"], "filed",
        "lists go to Newsletters in the hottub profile"
    );
    let mark: Vec<_> = run(&["history", "--format", "json", "--member", "Mark Johnson"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(mark.len(), 2);
    let stats: serde_json::Value =
        serde_json::from_str(&run(&["stats", "--format", "json"])).expect("json");
    assert_eq!(stats["Mark Johnson"]["total"], 2);
    assert_eq!(stats["Mark Johnson"]["by_category"]["SALES"], 2);
    assert_eq!(stats["Sarah Williams"]["total"], 2);
    assert_eq!(stats["Sarah Williams"]["escalations"]["HIGH"], 1);
    assert_eq!(stats["(nobody)"]["reasons"]["not_routed_list"], 1);
    let text = run(&["stats"]);
    assert!(
        text.contains("5 message(s) triaged") && text.contains("Mark Johnson: 2"),
        "{text}"
    );
    let receipt = run(&["explain", "--message-id", "<h4@test.example>"]);
    assert!(
        receipt.contains("Escalation HIGH") && receipt.contains("MANAGER → Sarah Williams"),
        "{receipt}"
    );
}

#[test]
fn the_systemd_unit_verifies() {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze is not installed; nothing to verify");
        return;
    };
    assert!(out.status.success());
    let dir = TempDir::new("mt-unit");
    let unit = std::fs::read_to_string(root().join("systemd/mailtriage.service")).expect("unit");
    // Point ExecStart at the binary under test (verify checks that it exists).
    let unit = unit.replace(
        "/usr/local/bin/mailtriage",
        env!("CARGO_BIN_EXE_mailtriage"),
    );
    let path = dir.path().join("mailtriage.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("mailtriage.service:"),
        "{text}"
    );
}
