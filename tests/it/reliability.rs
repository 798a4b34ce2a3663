//! Failures that must not vanish (issue 19): a configuration that cannot be watched says
//! that hot reload is off, and a watch that works is kept when new files cannot be
//! watched; a metrics port in use is a clear error; running out of file descriptors does
//! not make the metrics endpoint spin; a task that overruns shutdown is aborted and named.

use std::fs;
use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::daemon::{message, root, Conf, Setup};
use super::harness::{free_port, poll, signal, Dovecot, DovecotOptions, TempDir};
use super::ops::scrape;

const PW: (&str, &str) = ("PW", "alicepw");

/// The hottub profile's URGENT keywords, which the edits below change.
const URGENT_RULE: &str = "  URGENT:\n    keywords: {no heat: 1.5}\n";

/// The daemon started by these tests (for the ones that need more than
/// `Setup::start`); killed on drop.
struct Run {
    child: Option<Child>,
    log: PathBuf,
}

impl Run {
    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        poll(timeout, || self.log().contains(needle).then_some(())).is_some()
    }

    fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Waits for the exit; `None` (and killed) if it takes longer than `timeout`.
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let status = poll(timeout, || child.try_wait().ok().flatten());
        if status.is_none() {
            self.kill();
        }
        status
    }

    fn term(&mut self, timeout: Duration) -> Option<ExitStatus> {
        signal(self.pid(), 15);
        self.wait(timeout)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `mailtriage run` on `s` the way an unprivileged user would run it: as root (as
/// the tests may be), through setpriv without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so
/// that a directory without read permission cannot be watched.
fn start_unprivileged(s: &Setup) -> Run {
    let bin = env!("CARGO_BIN_EXE_mailtriage");
    let is_root = fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0);
    let mut cmd = if is_root {
        let mut c = Command::new("setpriv");
        c.arg("--bounding-set=-dac_override,-dac_read_search")
            .arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.arg("run").arg("--config").arg(&s.config);
    Run {
        child: Some(spawn(cmd, &s.log)),
        log: s.log.clone(),
    }
}

fn spawn(mut cmd: Command, log: &Path) -> Child {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open log");
    cmd.env_remove("MAILTRIAGE_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// A directory that can be traversed but not read (mode 0111): its files can be opened
/// by name, the directory cannot be listed or watched. Readable again on drop, so that
/// it can be removed.
struct Locked(PathBuf);

impl Locked {
    fn new(dir: PathBuf) -> Locked {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o111)).expect("chmod 0111");
        Locked(dir)
    }

    fn unlock(&self) {
        fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
    }
}

/// A Maildir tree (cur, new, tmp) at `path`.
fn maildir(path: &Path) -> PathBuf {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(path.join(sub)).expect("maildir");
    }
    path.to_path_buf()
}

/// A copy of the hottub profile at `path`.
fn hottub_at(path: &Path) -> PathBuf {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::copy(root().join("profiles/hottub.yaml"), path).expect("copy profile");
    path.to_path_buf()
}

/// Rewrites the profile as the hottub one whose URGENT rule has one more keyword (each
/// word a new profile version).
fn add_urgent_word(profile: &Path, word: &str) {
    let text = fs::read_to_string(root().join("profiles/hottub.yaml")).expect("read profile");
    assert!(text.contains(URGENT_RULE), "the hottub profile changed");
    let edited = text.replace(
        URGENT_RULE,
        &format!("  URGENT:\n    keywords: {{no heat: 1.5, {word}: 5.0}}\n"),
    );
    fs::write(profile, edited).expect("edit profile");
}

/// Regression (issue 19): a profile directory that cannot be watched used to turn hot
/// reload off without a word (`FileWatch::new(..).ok()`).
#[test]
fn a_profile_directory_that_cannot_be_watched_says_hot_reload_is_off() {
    let dir = TempDir::new("mt-rel-off");
    let tree = maildir(&dir.path().join("Maildir"));
    let profile = hottub_at(&dir.path().join("locked/hottub.yaml"));
    let locked = Locked::new(dir.path().join("locked"));
    let s = Setup::maildir(&tree, &profile, "    poll_interval: 60s\n");
    let mut daemon = start_unprivileged(&s);
    assert!(
        daemon.wait_log("hot reload is off", Duration::from_secs(10)),
        "no word that hot reload is off:\n{}",
        daemon.log()
    );
    let log = daemon.log();
    assert!(
        log.contains(&format!("cannot watch {} for changes", locked.0.display())),
        "the directory is not named:\n{log}"
    );
    assert!(log.contains("Permission denied"), "no reason:\n{log}");
    assert!(log.contains("SIGHUP still reloads"), "{log}");
    assert!(daemon.wait_log("watching Maildir", Duration::from_secs(10)));
    // The owner makes the directory readable and sends SIGHUP: the edit made meanwhile is
    // loaded, and hot reload is on again.
    add_urgent_word(&profile, "alpha");
    locked.unlock();
    assert!(signal(daemon.pid(), 1));
    assert!(
        daemon.wait_log("hot reload is on", Duration::from_secs(5)),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.count("profile reloaded"), 1, "{}", daemon.log());
    add_urgent_word(&profile, "bravo");
    assert!(
        poll(Duration::from_secs(5), || (daemon
            .count("profile reloaded")
            == 2)
            .then_some(()))
        .is_some(),
        "the edit after SIGHUP was not noticed:\n{}",
        daemon.log()
    );
    assert_eq!(
        daemon.term(Duration::from_secs(10)).map(|s| s.success()),
        Some(true)
    );
}

/// Regression (issue 19): when the configuration named a file that could not be watched,
/// the watch that worked was replaced by none, and edits to the other files went unnoticed.
#[test]
fn a_watch_that_works_is_kept_when_a_new_profile_cannot_be_watched() {
    let dir = TempDir::new("mt-rel-keep");
    let tree = maildir(&dir.path().join("Maildir"));
    let second_tree = maildir(&dir.path().join("Second"));
    let profile = hottub_at(&dir.path().join("profiles/hottub.yaml"));
    let second_profile = hottub_at(&dir.path().join("locked/second.yaml"));
    let _locked = Locked::new(dir.path().join("locked"));
    let s = Setup::maildir(&tree, &profile, "    poll_interval: 60s\n");
    let mut daemon = start_unprivileged(&s);
    // Logged by the supervisor once its watch is set up (unlike "watching Maildir").
    assert!(daemon.wait_log("every account has synced", Duration::from_secs(10)));
    assert!(!daemon.log().contains("cannot watch"), "{}", daemon.log());
    // A second account whose profile sits in the unreadable directory: the configuration
    // file is watched, so saving it is the reload.
    let mut cfg = fs::read_to_string(&s.config).expect("config");
    cfg.push_str(&format!(
        "  - name: second\n    profile: {}\n    maildir: {}\n    poll_interval: 60s\n",
        second_profile.display(),
        second_tree.display()
    ));
    fs::write(&s.config, cfg).expect("write config");
    assert!(
        daemon.wait_log("configuration reloaded", Duration::from_secs(5)),
        "{}",
        daemon.log()
    );
    assert!(daemon
        .log()
        .contains("account added to the configuration; starting it"));
    // The watch follows the configuration right after the reload.
    std::thread::sleep(Duration::from_millis(500));
    // The first profile is still watched.
    add_urgent_word(&profile, "charlie");
    assert!(
        daemon.wait_log("profile reloaded", Duration::from_secs(5)),
        "the working watch was thrown away:\n{}",
        daemon.log()
    );
    let log = daemon.log();
    let kept = log
        .lines()
        .find(|l| l.contains("hot reload still notices edits to"))
        .unwrap_or_else(|| panic!("no word of the files still watched:\n{log}"));
    for still in [&s.config, &profile] {
        assert!(kept.contains(&still.display().to_string()), "{kept}");
    }
    assert!(
        log.contains(&format!(
            "cannot watch {} for changes",
            second_profile.parent().expect("dir").display()
        )),
        "{log}"
    );
    assert_eq!(
        daemon.term(Duration::from_secs(10)).map(|s| s.success()),
        Some(true)
    );
}

/// A metrics address in use ends the start with an error that names it, at once. (This
/// was already so before issue 19; it guards the move of the endpoint into the
/// supervisor's task set.)
#[test]
fn a_metrics_port_in_use_is_a_clear_error_at_once() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = TempDir::new("mt-rel-port");
    let tree = maildir(&dir.path().join("Maildir"));
    let s = Setup::maildir(&tree, &root().join("profiles/hottub.yaml"), "");
    let cfg = fs::read_to_string(&s.config).expect("config");
    fs::write(&s.config, format!("metrics: 127.0.0.1:{port}\n{cfg}")).expect("config");
    let started = Instant::now();
    let mut daemon = Run {
        child: Some(spawn(
            {
                let mut c = Command::new(env!("CARGO_BIN_EXE_mailtriage"));
                c.arg("run").arg("--config").arg(&s.config);
                c
            },
            &s.log,
        )),
        log: s.log.clone(),
    };
    let status = daemon.wait(Duration::from_secs(10));
    assert_eq!(status.map(|s| s.success()), Some(false), "{}", daemon.log());
    assert!(started.elapsed() < Duration::from_secs(5));
    let log = daemon.log();
    assert!(
        log.contains(&format!("cannot listen for metrics on 127.0.0.1:{port}")),
        "{log}"
    );
    assert!(log.contains("Address already in use"), "{log}");
    drop(taken);
}

/// The descriptors process `pid` has open, by number.
fn open_fds(pid: u32) -> Vec<u32> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list fds")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// CPU time process `pid` has used (user + system; /proc counts in USER_HZ, 100 on Linux).
fn cpu_time(pid: u32) -> Duration {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().expect("ticks"))
        .collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

/// The soft limit of open files of process `pid`.
fn soft_nofile(pid: u32) -> String {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("Max open files")
        .to_string()
}

fn set_soft_nofile(pid: u32, limit: &str) {
    let out = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:"))
        .output()
        .expect("prlimit (util-linux) runs");
    assert!(
        out.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Regression (issue 19): when accepting failed (here: out of file descriptors, while
/// clients wait), the metrics listener retried at once, forever — a core and thousands of
/// log lines a second. Now it pauses, and serves again once descriptors are free.
#[test]
fn out_of_file_descriptors_the_metrics_endpoint_pauses_instead_of_spinning() {
    let d = Dovecot::start(DovecotOptions::default());
    let port = free_port();
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: PW.0,
            extra: "",
        },
    );
    let cfg = fs::read_to_string(&s.config).expect("config");
    fs::write(&s.config, format!("metrics: 127.0.0.1:{port}\n{cfg}")).expect("config");
    let mut daemon = s.start(&[PW]);
    assert!(
        daemon.wait_log("connected", Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    assert!(poll(Duration::from_secs(5), || scrape(port)).is_some());
    let pid = daemon.pid();
    let before = soft_nofile(pid);
    // No descriptor numbers left above the highest in use; the clients take any gaps
    // below it, and the rest wait to be accepted.
    let fds = open_fds(pid);
    let highest = fds.iter().copied().max().expect("some fds");
    let gaps = (highest + 1) as usize - fds.len();
    set_soft_nofile(pid, &(highest + 1).to_string());
    let clients: Vec<TcpStream> = (0..gaps + 8)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (lines, cpu) = (
        daemon.log().matches("Too many open files").count(),
        cpu_time(pid),
    );
    let window = Duration::from_secs(2);
    std::thread::sleep(window);
    let lines = daemon.log().matches("Too many open files").count() - lines;
    let cpu = cpu_time(pid) - cpu;
    set_soft_nofile(pid, &before);
    drop(clients);
    assert!(
        daemon.log().contains("Too many open files"),
        "accepting never failed: the test did not exhaust the descriptors\n{}",
        daemon.log()
    );
    assert!(
        lines <= 10,
        "{lines} accept failures logged in {window:?}: a busy loop"
    );
    assert!(
        cpu < Duration::from_millis(500),
        "{cpu:?} of CPU in {window:?}: a busy loop"
    );
    assert!(daemon.log().contains("trying again in"), "{}", daemon.log());
    // Descriptors free again: the endpoint serves again.
    assert!(
        poll(Duration::from_secs(15), || scrape(port)).is_some(),
        "the endpoint did not recover:\n{}",
        daemon.log()
    );
    assert_eq!(
        daemon.term(Duration::from_secs(10)).map(|s| s.success()),
        Some(true),
        "{}",
        daemon.log()
    );
}

/// An SMTP server that accepts connections and never says a word; each connection is
/// reported on the channel. Stops when dropped.
struct Tarpit {
    port: u16,
    stop: Arc<AtomicBool>,
    seen: mpsc::Receiver<()>,
}

impl Tarpit {
    fn start() -> Tarpit {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, seen) = mpsc::channel();
        let stopping = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((c, _)) => {
                        held.push(c);
                        let _ = tx.send(());
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => break,
                }
            }
        });
        Tarpit { port, stop, seen }
    }
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Regression (issue 19): at shutdown the outbox was awaited apart from the other tasks
/// and, overrunning, detached; a panic in it went unheard. Now it is one of the
/// supervisor's tasks: past the deadline it is aborted and named, the others are
/// reported as stopped, and the daemon exits 0 without waiting for the SMTP timeout.
#[test]
fn a_task_that_overruns_shutdown_is_aborted_and_named() {
    let d = Dovecot::start(DovecotOptions::default());
    let smtp = Tarpit::start();
    d.deliver(
        "alice",
        "INBOX",
        &message(
            "overrun",
            "Flood",
            "Emergency: water everywhere, the tub is flooding the deck!",
        ),
    );
    let extra = format!(
        "    backfill: all\nsmtp: {{host: 127.0.0.1, port: {}, tls: none, from: \"Triage <alerts@hottubman.ca>\"}}\n",
        smtp.port
    );
    let s = Setup::imap(
        &d,
        Conf {
            profile: root().join("profiles/hottub.yaml"),
            user: "alice",
            password_env: PW.0,
            extra: &extra,
        },
    );
    let mut daemon = s.start(&[PW]);
    // The alert is being sent: the outbox waits for a greeting that never comes (up to the
    // 60 s a message may take).
    assert!(
        smtp.seen.recv_timeout(Duration::from_secs(30)).is_ok(),
        "the outbox never connected:\n{}",
        daemon.log()
    );
    let stopping = Instant::now();
    let status = daemon.term(Duration::from_secs(40));
    let took = stopping.elapsed();
    let log = s.log_text();
    assert_eq!(status.map(|s| s.success()), Some(true), "{log}");
    assert!(
        took >= Duration::from_secs(19) && took < Duration::from_secs(30),
        "stopping took {took:?}, not the 20 s deadline:\n{log}"
    );
    for needle in [
        "outbox did not stop within 20s of shutdown; aborting it",
        "aborted task=outbox",
        "stopped task=test/INBOX",
        "1 of 2 task(s) stopped; aborted after 20s: outbox",
    ] {
        assert!(log.contains(needle), "{needle:?} missing:\n{log}");
    }
}
