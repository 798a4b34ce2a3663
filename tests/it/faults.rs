//! Faults: connections cut at random points (mid-FETCH, mid-MOVE, mid-IDLE) over a large
//! backlog and a stream of new mail, SIGKILL at random moments, a stalled server, a full
//! or read-only state directory, and the server refusing CREATE or MOVE.
//!
//! Sizes have CI defaults; longer local runs: MAILTRIAGE_CHAOS_MESSAGES (5000),
//! MAILTRIAGE_KILLS (50).

use std::time::{Duration, Instant};

use super::daemon::{assert_exactly_once, backlog, message, root, wait_count, Conf, Setup};
use super::harness::{poll, Dovecot, DovecotOptions};
use super::proxy::{Mode, Proxy};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A config for alice behind `port` (a proxy or Dovecot itself); `imap_timeout` sets
/// the account's `imap.timeout`.
fn setup_on(port: u16, extra: &str) -> Setup {
    Setup::imap_port(
        port,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: "PW",
            extra,
        },
    )
}

fn with_timeout(s: Setup, timeout: &str) -> Setup {
    let cfg = std::fs::read_to_string(&s.config).expect("config");
    let cfg = cfg.replacen(
        "password: {env: PW}}",
        &format!("password: {{env: PW}}, timeout: {timeout}}}"),
        1,
    );
    std::fs::write(&s.config, cfg).expect("config");
    s
}

const PW: (&str, &str) = ("PW", "alicepw");

fn chaos(commands: Vec<&'static str>) -> Mode {
    Mode::Chaos {
        cut_after_command: 0.08,
        commands,
        cut_mid_response: 0.02,
        max_delay_ms: 2,
    }
}

/// Runs the daemon through a chaotic proxy until `originals` plus a stream of new mail are
/// all filed; returns the number of cuts survived.
fn survive_chaos(
    opts: DovecotOptions,
    commands: Vec<&'static str>,
    n: usize,
    stream: usize,
    min_cuts: u64,
    seed: u64,
) -> u64 {
    let d = Dovecot::start(opts);
    let mut all = backlog(n, &format!("chaos{seed}"));
    d.deliver_many("alice", "INBOX", &all);
    let proxy = Proxy::start(d.port(), seed);
    proxy.set_mode(chaos(commands));
    let s = with_timeout(
        setup_on(proxy.port(), "    backfill: all\n    poll_interval: 1s\n"),
        "5s",
    );
    let mut daemon = s.start(&[PW]);
    // A stream of new mail while the backlog is being worked through, kept up until the
    // proxy has cut at least `min_cuts` times (or four minutes passed: on a loaded
    // machine sessions cut before making progress back off for longer).
    let stream_deadline = Instant::now() + Duration::from_secs(240);
    let mut i = 0;
    while i < stream || (proxy.stats().cuts() < min_cuts && Instant::now() < stream_deadline) {
        let m = message(
            &format!("stream{seed}-{i}"),
            "Quote",
            &format!("A quote for a new hot tub please ({i})"),
        );
        d.deliver("alice", "INBOX", &m);
        all.push(m);
        i += 1;
        std::thread::sleep(Duration::from_millis(40));
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    while Instant::now() < deadline && !d.messages("alice", "INBOX").is_empty() {
        assert!(daemon.running(), "the daemon died:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    let cuts = proxy.stats().cuts();
    proxy.set_mode(Mode::Pass);
    let left = d.messages("alice", "INBOX");
    if !left.is_empty() {
        let ids: Vec<String> = left
            .iter()
            .take(5)
            .map(|m| {
                String::from_utf8_lossy(&m.raw)
                    .lines()
                    .find(|l| l.starts_with("Message-ID"))
                    .unwrap_or("?")
                    .to_string()
            })
            .collect();
        let history = std::process::Command::new(env!("CARGO_BIN_EXE_mailtriage"))
            .args(["history", "--format", "json", "--limit", "0", "--state"])
            .arg(&s.state)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let about: Vec<&str> = history
            .lines()
            .filter(|l| {
                ids.iter().any(|id| {
                    id.split('<')
                        .nth(1)
                        .is_some_and(|x| l.contains(x.trim_end_matches('>')))
                })
            })
            .collect();
        panic!(
            "{} left in INBOX after {cuts} cuts, e.g. {ids:?}\ntheir decisions: {about:?}\n{}",
            left.len(),
            tail(&daemon.log())
        );
    }
    assert_eq!(
        daemon.term(Duration::from_secs(30)).map(|st| st.success()),
        Some(true),
        "clean exit after the storm"
    );
    assert_exactly_once(&d, "alice", &all);
    let log = daemon.log();
    assert!(
        log.contains("connection lost") || log.contains("retrying in"),
        "the proxy never hurt:\n{}",
        tail(&log)
    );
    eprintln!(
        "chaos: {} messages ({n} backlog + {stream} streamed), {cuts} cuts survived ({} after a command, {} mid-response), {} connections",
        all.len(),
        proxy.stats().cuts_after_command.load(std::sync::atomic::Ordering::Relaxed),
        proxy.stats().cuts_mid_response.load(std::sync::atomic::Ordering::Relaxed),
        proxy.stats().connections.load(std::sync::atomic::Ordering::Relaxed),
    );
    cuts
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[test]
fn cut_connections_lose_and_duplicate_nothing() {
    let n = env_usize("MAILTRIAGE_CHAOS_MESSAGES", 5000);
    let cuts = survive_chaos(
        DovecotOptions::default(),
        vec!["UID FETCH", "UID MOVE", "IDLE", "UID SEARCH", "SELECT"],
        n,
        100,
        30,
        0x5eed_0001,
    );
    assert!(cuts >= 30, "only {cuts} cuts: the test did not test much");
}

#[test]
fn cut_connections_on_a_server_without_move() {
    let n = env_usize("MAILTRIAGE_CHAOS_MESSAGES", 5000) / 5;
    let cuts = survive_chaos(
        DovecotOptions {
            without_move: true,
            ..DovecotOptions::default()
        },
        vec!["UID FETCH", "UID COPY", "UID STORE", "UID EXPUNGE", "IDLE"],
        n,
        30,
        15,
        0x5eed_0002,
    );
    assert!(cuts >= 15, "only {cuts} cuts: the test did not test much");
}

#[test]
fn sigkill_at_random_moments_fifty_times() {
    let kills = env_usize("MAILTRIAGE_KILLS", 50);
    let d = Dovecot::start(DovecotOptions::default());
    let originals = backlog(3000, "kill50");
    d.deliver_many("alice", "INBOX", &originals);
    let s = setup_on(d.port(), "    backfill: all\n");
    // Deterministic "random" kill points between 15 ms and 265 ms.
    s.kill_repeatedly(&[PW], kills, 0x9e37_79b9_7f4a_7c15, 15..265);
    let left_before_final = d.messages("alice", "INBOX").len();
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    assert_exactly_once(&d, "alice", &originals);
    assert!(d.messages("alice", "INBOX").is_empty());
    eprintln!("sigkill: {kills} kills survived; {left_before_final} of {} messages were left for the final run", originals.len());
}

#[test]
fn a_stalled_server_times_out_reconnects_and_sigterm_still_works() {
    let d = Dovecot::start(DovecotOptions::default());
    let proxy = Proxy::start(d.port(), 7);
    proxy.set_mode(Mode::Stall);
    let s = with_timeout(
        setup_on(proxy.port(), "    backfill: all\n    poll_interval: 2s\n"),
        "1s",
    );
    let mut daemon = s.start(&[PW]);
    assert!(
        poll(Duration::from_secs(15), || (daemon
            .log()
            .matches("timed out while waiting for the greeting")
            .count()
            >= 2)
            .then_some(()))
        .is_some(),
        "the greeting timeout did not fire twice:\n{}",
        daemon.log()
    );
    assert!(daemon.log().contains("retrying in"));
    let stopped = Instant::now();
    assert_eq!(
        daemon.term(Duration::from_secs(10)).map(|st| st.success()),
        Some(true),
        "SIGTERM during a stall"
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(8),
        "took {:?}",
        stopped.elapsed()
    );

    // Stalling in the middle of a session: IDLE and the next commands time out, the daemon
    // reconnects, and once the server answers again new mail is filed.
    proxy.set_mode(Mode::Pass);
    let daemon = s.start(&[PW]);
    assert!(
        daemon.wait_log("sync done", Duration::from_secs(10))
            || daemon.wait_log("connected", Duration::from_secs(5)),
        "{}",
        daemon.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    proxy.set_mode(Mode::Stall);
    d.deliver(
        "alice",
        "INBOX",
        &message("after-stall", "Quote", "A quote for a new hot tub please"),
    );
    assert!(
        poll(Duration::from_secs(20), || daemon
            .log()
            .contains("connection lost")
            .then_some(()))
        .is_some(),
        "a stalled session is not noticed:\n{}",
        daemon.log()
    );
    proxy.set_mode(Mode::Pass);
    assert!(
        wait_count(
            &d,
            "alice",
            "SALES/Mark Johnson",
            1,
            Duration::from_secs(20)
        ),
        "{}",
        tail(&daemon.log())
    );
}

/// A small tmpfs for the state directory (root only; CI runs as root).
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = super::harness::TempDir::new("mt-disk");
        let path = dir.path().join("state");
        std::fs::create_dir_all(&path).ok()?;
        let mut dir = dir;
        dir.keep();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { path })
    }

    fn remount(&self, opts: &str) -> bool {
        std::process::Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

fn on_disk(d: &Dovecot, disk: &SmallDisk, extra: &str) -> Setup {
    let s = setup_on(d.port(), extra);
    let cfg = std::fs::read_to_string(&s.config).expect("config");
    let state = disk.path.join("state.db");
    let cfg = cfg.replacen(
        &format!("state: {}", s.state.display()),
        &format!("state: {}", state.display()),
        1,
    );
    std::fs::write(&s.config, cfg).expect("config");
    s
}

#[test]
fn a_full_state_disk_stops_filing_and_says_why() {
    let Some(disk) = SmallDisk::mount("2m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
        return;
    };
    let d = Dovecot::start(DovecotOptions::default());
    let s = on_disk(&d, &disk, "    backfill: all\n    poll_interval: 1s\n");
    let daemon = s.start(&[PW]);
    d.deliver_many("alice", "INBOX", &backlog(6, "disk-a"));
    assert!(
        wait_count(&d, "alice", "INBOX", 0, Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    // Fill the disk.
    let filler = disk.path.join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let blocked = backlog(6, "disk-b");
    d.deliver_many("alice", "INBOX", &blocked);
    assert!(
        poll(Duration::from_secs(15), || daemon
            .log()
            .contains("database or disk is full")
            .then_some(()))
        .is_some(),
        "the daemon does not say why:\n{}",
        tail(&daemon.log())
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        d.messages("alice", "INBOX").len(),
        6,
        "nothing is filed without being recorded"
    );
    // Space again: everything flows.
    std::fs::remove_file(&filler).expect("free the disk");
    assert!(
        wait_count(&d, "alice", "INBOX", 0, Duration::from_secs(60)),
        "{}",
        tail(&daemon.log())
    );
    let mut all = backlog(6, "disk-a");
    all.extend(blocked);
    assert_exactly_once(&d, "alice", &all);
}

#[test]
fn a_read_only_state_directory_refuses_to_start() {
    let Some(disk) = SmallDisk::mount("2m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
        return;
    };
    let d = Dovecot::start(DovecotOptions::default());
    let mails = backlog(4, "ro");
    d.deliver_many("alice", "INBOX", &mails);
    let s = on_disk(&d, &disk, "    backfill: all\n");
    assert!(disk.remount("ro"), "remount read-only");
    let (status, log) = s.run_once(&[PW]);
    assert!(!status.success());
    assert!(log.contains("Read-only file system"), "{log}");
    assert_eq!(d.messages("alice", "INBOX").len(), 4, "nothing filed");
    assert!(disk.remount("rw"));
    let (status, log) = s.run_once(&[PW]);
    assert!(status.success(), "{log}");
    assert_exactly_once(&d, "alice", &mails);
}

#[test]
fn refused_create_or_move_keeps_the_message_and_others_still_flow() {
    let acl = "mail_plugins = $mail_plugins acl\nprotocol imap {\n  mail_plugins = $mail_plugins imap_acl\n}\nplugin {\n  acl = vfile:{dir}/acl.global\n}\n";
    let d = Dovecot::start(DovecotOptions {
        extra_config: acl.to_string(),
        ..DovecotOptions::default()
    });
    // No inserting into SALES/*, no creating under MANAGER.
    std::fs::write(
        d.dir().join("acl.global"),
        "SALES/* owner lrwstexa\nMANAGER owner lrwstexa\nMANAGER/* owner lrwstexa\n",
    )
    .expect("acl");
    d.create_folder("alice", "SALES/Mark Johnson");
    let port = free_metrics_port();
    let s = setup_on(d.port(), "    backfill: all\n    poll_interval: 1s\n");
    let cfg = std::fs::read_to_string(&s.config).expect("config");
    std::fs::write(&s.config, format!("metrics: 127.0.0.1:{port}\n{cfg}")).expect("config");
    let daemon = s.start(&[PW]);
    let sales = message("acl-sales", "Quote", "A quote for a new hot tub please");
    let manager = message(
        "acl-manager",
        "Supplier",
        "We are a parts supplier and would like to become a vendor.",
    );
    let support = message(
        "acl-support",
        "Heater",
        "The heater is broken, please repair it",
    );
    d.deliver_many(
        "alice",
        "INBOX",
        &[sales.clone(), manager.clone(), support.clone()],
    );
    assert!(
        wait_count(
            &d,
            "alice",
            "SUPPORT/Sarah Williams",
            1,
            Duration::from_secs(10)
        ),
        "{}",
        daemon.log()
    );
    assert!(
        poll(Duration::from_secs(10), || (daemon
            .log()
            .matches("the server refused")
            .count()
            >= 2)
            .then_some(()))
        .is_some(),
        "{}",
        daemon.log()
    );
    let inbox: Vec<Vec<u8>> = d
        .messages("alice", "INBOX")
        .into_iter()
        .map(|m| m.raw)
        .collect();
    assert!(
        inbox.contains(&sales) && inbox.contains(&manager),
        "refused messages stay in the inbox"
    );
    assert!(
        daemon.log().contains("NOPERM"),
        "the server's reason is logged"
    );
    let metrics = super::ops::scrape(port).unwrap_or_default();
    assert!(
        metrics.contains("mailtriage_filing_errors_total{account=\"test\",kind=\"refused\"}"),
        "{metrics}"
    );
    // Later mail still flows.
    d.deliver(
        "alice",
        "INBOX",
        &message("acl-later", "Heater", "The pump is broken too"),
    );
    assert!(
        wait_count(
            &d,
            "alice",
            "SUPPORT/Sarah Williams",
            2,
            Duration::from_secs(10)
        ),
        "{}",
        daemon.log()
    );
    assert_exactly_once(&d, "alice", &{
        let mut all = vec![sales, manager, support];
        all.push(message("acl-later", "Heater", "The pump is broken too"));
        all
    });
}

fn free_metrics_port() -> u16 {
    super::harness::free_port()
}
