//! Running the real `mailtriage` binary against a test Dovecot: writing its
//! configuration, starting and signalling it, reading its log, and checking the mail
//! store with Dovecot's own tools (never with our IMAP code).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::harness::{poll, Dovecot, Mailstore, TempDir};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test message with a unique Message-ID.
pub fn message(id: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Pat Customer <pat@example.com>\r\nTo: info@hottubman.ca\r\nSubject: {subject}\r\nDate: Mon, 2 Mar 2026 10:00:00 -0500\r\nMessage-ID: <{id}@test.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A varied backlog: sales, support, manager and urgent mail, plus list mail.
pub fn backlog(n: usize, tag: &str) -> Vec<Vec<u8>> {
    let bodies = [
        ("Quote", "Could you send a quote for a new hot tub?"),
        ("Heater", "The heater is broken and needs a repair."),
        (
            "Supplier",
            "We are a parts supplier and would like to become a vendor.",
        ),
        (
            "Flood",
            "Emergency: water everywhere, the tub is flooding the deck!",
        ),
        ("Hours", "What are your opening hours on Saturday?"),
        ("Franchise", "We'd like to discuss a franchise opportunity."),
    ];
    (0..n)
        .map(|i| {
            let (s, b) = bodies[i % bodies.len()];
            message(
                &format!("{tag}-{i}"),
                &format!("{s} {i}"),
                &format!("{b}\r\n\r\nRegards,\r\nCustomer {i}"),
            )
        })
        .collect()
}

/// A test directory with a config for `mailtriage run`.
pub struct Setup {
    pub dir: TempDir,
    pub config: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
}

/// Options of the generated mailtriage.yaml.
pub struct Conf<'a> {
    pub profile: PathBuf,
    pub user: &'a str,
    pub password_env: &'a str,
    pub extra: &'a str,
}

impl Setup {
    /// A config watching `user`'s INBOX on `dovecot` over plain IMAP on loopback.
    pub fn imap(dovecot: &Dovecot, c: Conf<'_>) -> Setup {
        Self::imap_port(dovecot.port(), c)
    }

    /// The same on any server of the matrix.
    pub fn on(server: &(impl Mailstore + ?Sized), c: Conf<'_>) -> Setup {
        Self::imap_port(server.port(), c)
    }

    /// A config watching `user`'s INBOX on an IMAP server (or proxy) at 127.0.0.1:`port`.
    pub fn imap_port(port: u16, c: Conf<'_>) -> Setup {
        let dir = TempDir::new("mt-daemon");
        let state = dir.path().join("state/state.db");
        let config = dir.path().join("mailtriage.yaml");
        let yaml = format!(
            "state: {state}\nlog: {{level: \"info,mailtriage=debug\"}}\naccounts:\n  - name: test\n    profile: {profile}\n    imap: {{host: 127.0.0.1, port: {port}, tls: none, user: {user}, password: {{env: {env}}}}}\n{extra}",
            state = state.display(),
            profile = c.profile.display(),
            user = c.user,
            env = c.password_env,
            extra = c.extra,
        );
        fs::write(&config, yaml).expect("write config");
        let log = dir.path().join("daemon.log");
        Setup {
            dir,
            config,
            state,
            log,
        }
    }

    /// A config over a Maildir tree.
    pub fn maildir(tree: &Path, profile: &Path, extra: &str) -> Setup {
        let dir = TempDir::new("mt-maildir");
        let state = dir.path().join("state/state.db");
        let config = dir.path().join("mailtriage.yaml");
        let yaml = format!(
            "state: {}\naccounts:\n  - name: local\n    profile: {}\n    maildir: {}\n{extra}",
            state.display(),
            profile.display(),
            tree.display()
        );
        fs::write(&config, yaml).expect("write config");
        let log = dir.path().join("daemon.log");
        Setup {
            dir,
            config,
            state,
            log,
        }
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailtriage"));
        cmd.arg("run").arg("--config").arg(&self.config).args(args);
        cmd.env_remove("MAILTRIAGE_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `mailtriage run --once` to completion; returns (status, log).
    pub fn run_once(&self, env: &[(&str, &str)]) -> (ExitStatus, String) {
        let out = self
            .command(&["--once"], env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("mailtriage runs");
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut all = fs::read_to_string(&self.log).unwrap_or_default();
        all.push_str(&log);
        fs::write(&self.log, all).expect("append log");
        (out.status, log)
    }

    /// Starts the daemon in the background; its log goes to `self.log` (appended).
    pub fn start(&self, env: &[(&str, &str)]) -> Daemon {
        self.start_with(&[], env)
    }

    /// Starts the daemon `times` times and SIGKILLs it after a pseudo-random pause in
    /// `pause` (milliseconds), each run on the state the previous one left. The pauses
    /// come from a xorshift over `seed`: the same seed gives the same kill points.
    pub fn kill_repeatedly(
        &self,
        env: &[(&str, &str)],
        times: usize,
        seed: u64,
        pause: std::ops::Range<u64>,
    ) {
        let mut seed = seed;
        for _ in 0..times {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut daemon = self.start(env);
            std::thread::sleep(Duration::from_millis(
                pause.start + seed % (pause.end - pause.start),
            ));
            daemon.kill();
        }
    }

    /// Starts the daemon with extra arguments.
    pub fn start_with(&self, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let child = self
            .command(args, env)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mailtriage starts");
        Daemon {
            child: Some(child),
            log: self.log.clone(),
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A running daemon; killed on drop.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        poll(timeout, || self.log().contains(needle).then_some(())).is_some()
    }

    /// Is the process still running?
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn term(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        super::harness::signal(child.id(), 15);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, at once.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every message of `user`, by folder.
pub fn mailbox_contents(
    d: &(impl Mailstore + ?Sized),
    user: &str,
) -> BTreeMap<String, Vec<super::harness::StoredMessage>> {
    d.folders(user)
        .into_iter()
        .map(|f| {
            let m = d.messages(user, &f);
            (f, m)
        })
        .collect()
}

/// The folder the shipped profiles copy URGENT mail into (`copy_to: ESCALATED`): copies
/// made on purpose, counted apart.
pub const ESCALATION_COPIES: &str = "ESCALATED";

/// Asserts every original message is stored exactly once, byte-identical, and nothing
/// else exists — apart from at most one escalation copy of a message in
/// [`ESCALATION_COPIES`]; returns where each one went (the copies' folder included).
pub fn assert_exactly_once(
    d: &(impl Mailstore + ?Sized),
    user: &str,
    originals: &[Vec<u8>],
) -> BTreeMap<String, usize> {
    let contents = mailbox_contents(d, user);
    let mut count: BTreeMap<&[u8], usize> = BTreeMap::new();
    let mut escalated: BTreeMap<&[u8], usize> = BTreeMap::new();
    let mut per_folder: BTreeMap<String, usize> = BTreeMap::new();
    for (folder, msgs) in &contents {
        // As the server names it: `ESCALATED`, or `INBOX.ESCALATED` inside a namespace.
        let copies = folder == ESCALATION_COPIES
            || ["INBOX.", "INBOX/"]
                .iter()
                .any(|p| folder.strip_prefix(p) == Some(ESCALATION_COPIES));
        for m in msgs {
            let tally = if copies { &mut escalated } else { &mut count };
            *tally.entry(m.raw.as_slice()).or_default() += 1;
            *per_folder.entry(folder.clone()).or_default() += 1;
        }
    }
    let mut problems = Vec::new();
    for o in originals {
        match count.get(o.as_slice()) {
            Some(1) => {}
            Some(n) => problems.push(format!(
                "{n} copies of {}",
                first_line_with(o, "Message-ID")
            )),
            None => problems.push(format!("lost: {}", first_line_with(o, "Message-ID"))),
        }
        if let Some(n) = escalated.get(o.as_slice()).filter(|n| **n > 1) {
            problems.push(format!(
                "{n} escalation copies of {}",
                first_line_with(o, "Message-ID")
            ));
        }
    }
    let stored: usize = count.values().sum();
    if stored != originals.len() {
        problems.push(format!(
            "{stored} messages stored outside {ESCALATION_COPIES}, {} expected",
            originals.len()
        ));
    }
    let strangers = escalated
        .keys()
        .filter(|raw| !originals.iter().any(|o| o.as_slice() == **raw))
        .count();
    if strangers > 0 {
        problems.push(format!(
            "{strangers} message(s) in {ESCALATION_COPIES} that are no original's copy"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problems, e.g. {:?}\nfolders: {per_folder:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    per_folder
}

fn first_line_with(raw: &[u8], header: &str) -> String {
    String::from_utf8_lossy(raw)
        .lines()
        .find(|l| l.starts_with(header))
        .unwrap_or("(no Message-ID)")
        .to_string()
}

/// Waits until `folder` of `user` holds `n` messages.
pub fn wait_count(
    d: &(impl Mailstore + ?Sized),
    user: &str,
    folder: &str,
    n: usize,
    timeout: Duration,
) -> bool {
    poll(timeout, || {
        (d.messages(user, folder).len() == n).then_some(())
    })
    .is_some()
}
