//! A throwaway Cyrus IMAP 3.6 per test, beside Dovecot: Debian's binaries unpacked by
//! `scripts/cyrus-testbed.sh` (never installed: the package conflicts with
//! dovecot-imapd), run from there with a configuration of their own in a temp dir, a
//! sasldb of test users, `idled` for push, on a free port of 127.0.0.1.
//!
//! Laid out as Debian ships it: personal namespace `INBOX.`, separator `.`
//! (`altnamespace: no`, `unixhierarchysep: no`), special-use folders created with the
//! inbox. Mail-side helpers speak IMAP as the user (Cyrus has no doveadm), with the
//! harness's own raw client, never the daemon's code.

use super::imap::{quote, ImapClient};
use super::mailbox::StoredMessage;
use super::process::{self, SIGKILL, SIGTERM};
use super::tmp::TempDir;
use super::{free_port, poll};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The admin user (may set quotas); its password.
const ADMIN: (&str, &str) = ("cyrusadmin", "cyrusadminpw");
/// The SASL realm of the test users (`servername`).
const REALM: &str = "mailtriage-testbed";

/// The unpacked Debian packages (`pkg/` of `scripts/cyrus-testbed.sh`), unpacked once
/// per test process if they are not yet.
fn pkg() -> &'static Path {
    static PKG: OnceLock<PathBuf> = OnceLock::new();
    PKG.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("MAILTRIAGE_CYRUS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/testbed/cyrus"));
        if !dir.join(".complete").exists() {
            let out = Command::new("bash")
                .arg(root.join("scripts/cyrus-testbed.sh"))
                .arg(&dir)
                .output()
                .unwrap_or_else(|e| panic!("cannot run scripts/cyrus-testbed.sh: {e}"));
            assert!(
                out.status.success(),
                "scripts/cyrus-testbed.sh failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir.join("pkg")
    })
}

fn lib_path() -> String {
    let p = pkg();
    format!(
        "{}:{}",
        p.join("usr/lib/x86_64-linux-gnu").display(),
        p.join("lib/x86_64-linux-gnu").display()
    )
}

/// A running throwaway Cyrus; stopped and removed on drop.
pub struct Cyrus {
    dir: TempDir,
    port: u16,
    users: Vec<(String, String)>,
    master: Option<u32>,
}

impl Cyrus {
    /// Starts Cyrus with users alice/alicepw and bob/bobpw; waits until LOGIN works.
    pub fn start() -> Cyrus {
        let dir = TempDir::new("cyrus");
        let root = dir.path().to_path_buf();
        let mut c = Cyrus {
            dir,
            port: 0,
            users: vec![
                ("alice".into(), "alicepw".into()),
                ("bob".into(), "bobpw".into()),
            ],
            master: None,
        };
        for sub in [
            "config/socket",
            "config/lock",
            "config/proc",
            "config/db",
            "spool",
            "sieve",
        ] {
            fs::create_dir_all(root.join(sub)).unwrap_or_else(|e| panic!("mkdir {sub}: {e}"));
        }
        let (user, group) = run_as();
        let mut users = c.users.clone();
        users.push((ADMIN.0.into(), ADMIN.1.into()));
        for (u, pw) in &users {
            let out = process::run(
                {
                    let mut cmd = Command::new(pkg().join("usr/sbin/saslpasswd2"));
                    cmd.env("LD_LIBRARY_PATH", lib_path())
                        .args(["-p", "-c", "-f"])
                        .arg(root.join("sasldb2"))
                        .args(["-u", REALM, u]);
                    cmd
                },
                Some(pw.as_bytes()),
                Duration::from_secs(30),
            )
            .unwrap_or_else(|e| panic!("saslpasswd2: {e}"));
            assert!(out.status.success(), "saslpasswd2 {u}: {}", out.stderr);
        }
        for attempt in 1..=3 {
            c.port = free_port();
            c.write_config(&user, &group);
            chown_tree(&root, &user);
            match c.launch() {
                Ok(()) => return c,
                Err(e) if attempt < 3 && e.contains("did not accept") => continue,
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!()
    }

    /// The IMAP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test bed's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn write_config(&self, user: &str, group: &str) {
        let d = self.dir().display().to_string();
        let p = pkg().display().to_string();
        let imapd = format!(
            "configdirectory: {d}/config\ndefaultpartition: default\npartition-default: {d}/spool\n\
             sievedir: {d}/sieve\nidlesocket: {d}/config/socket/idle\nnotifysocket: {d}/config/socket/notify\n\
             lmtpsocket: {d}/config/socket/lmtp\nmaster_pid_file: {d}/config/master.pid\n\
             mboxname_lockpath: {d}/config/lock\nproc_path: {d}/config/proc\nservername: {REALM}\n\
             admins: {admin}\nallowplaintext: yes\nsasl_pwcheck_method: auxprop\nsasl_auxprop_plugin: sasldb\n\
             sasl_sasldb_path: {d}/sasldb2\nsasl_mech_list: PLAIN LOGIN\n\
             # Debian's stock namespace: personal prefix INBOX., separator .\n\
             unixhierarchysep: no\naltnamespace: no\nspecialusealways: yes\nautocreate_quota: 0\n\
             autocreate_inbox_folders: Sent | Drafts | Trash | Junk | Archive\n\
             expunge_mode: immediate\ndelete_mode: immediate\ncyrus_user: {user}\ncyrus_group: {group}\n",
            admin = ADMIN.0,
        );
        // One service entry per line: the master reads nothing of a one-line section.
        let cyrus = format!(
            "START {{\n  recover cmd=\"{p}/usr/lib/cyrus/bin/ctl_cyrusdb -C {d}/imapd.conf -r\"\n}}\n\
             SERVICES {{\n  imap cmd=\"{p}/usr/lib/cyrus/bin/imapd -C {d}/imapd.conf\" listen=\"127.0.0.1:{port}\" prefork=1\n}}\n\
             EVENTS {{\n  checkpoint cmd=\"{p}/usr/lib/cyrus/bin/ctl_cyrusdb -C {d}/imapd.conf -c\" period=30\n}}\n\
             DAEMON {{\n  idled cmd=\"{p}/usr/lib/cyrus/bin/idled -C {d}/imapd.conf\"\n}}\n",
            port = self.port
        );
        fs::write(self.dir().join("imapd.conf"), imapd).expect("imapd.conf");
        fs::write(self.dir().join("cyrus.conf"), cyrus).expect("cyrus.conf");
    }

    /// Starts the master (it forks into the background) and waits for a LOGIN.
    fn launch(&mut self) -> Result<(), String> {
        let d = self.dir().to_path_buf();
        let out = process::run(
            {
                let mut cmd = Command::new(pkg().join("usr/lib/cyrus/bin/master"));
                cmd.env("LD_LIBRARY_PATH", lib_path())
                    .arg("-C")
                    .arg(d.join("imapd.conf"))
                    .arg("-M")
                    .arg(d.join("cyrus.conf"))
                    .arg("-p")
                    .arg(d.join("config/master.pid"))
                    .arg("-d");
                cmd
            },
            None,
            Duration::from_secs(30),
        )?;
        if !out.status.success() {
            return Err(format!("cyrus master failed to start: {}", out.stderr));
        }
        self.master = poll(Duration::from_secs(10), || {
            fs::read_to_string(d.join("config/master.pid"))
                .ok()?
                .trim()
                .parse()
                .ok()
        });
        let (user, pw) = self.users[0].clone();
        let ready = poll(Duration::from_secs(20), || {
            let mut c = ImapClient::try_connect(self.port, Duration::from_secs(2)).ok()?;
            c.set_timeout(Duration::from_secs(5));
            c.try_login(&user, &pw)?.contains(" OK").then_some(())
        });
        match ready {
            Some(()) => Ok(()),
            None => {
                self.stop();
                Err(format!(
                    "Cyrus did not accept a LOGIN on port {} within 20 s",
                    self.port
                ))
            }
        }
    }

    /// Stops the master and its children; returns once the port refuses connections.
    pub fn stop(&mut self) {
        let Some(pid) = self.master.take() else {
            return;
        };
        process::signal(pid, SIGTERM);
        let gone = poll(Duration::from_secs(10), || {
            (!process::alive(pid)).then_some(())
        });
        if gone.is_none() {
            for (kid, _) in process::children(pid) {
                process::signal(kid, SIGKILL);
            }
            process::signal(pid, SIGKILL);
        }
        let port = self.port;
        poll(Duration::from_secs(10), || {
            std::net::TcpListener::bind(("127.0.0.1", port))
                .is_ok()
                .then_some(())
        });
    }

    /// Stops and starts Cyrus on the same port with the same data: fresh imapd
    /// processes (each warns about a quota at most once per 10 minutes).
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.launch() {
            panic!("restart: {e}");
        }
    }

    /// A logged-in client of `user`.
    pub fn client(&self, user: &str) -> ImapClient {
        let pw = if user == ADMIN.0 {
            ADMIN.1.to_string()
        } else {
            self.users
                .iter()
                .find(|(u, _)| u == user)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| panic!("no test user {user}"))
        };
        let mut c = ImapClient::connect(self.port);
        let login = c.login(user, &pw);
        assert!(login.contains(" OK"), "LOGIN {user}: {}", c.transcript());
        c
    }

    /// APPENDs each message to `folder` (a server name such as `INBOX`), in order.
    pub fn deliver_many(&self, user: &str, folder: &str, raws: &[Vec<u8>]) {
        let mut c = self.client(user);
        for raw in raws {
            let reply = c.append(folder, raw);
            assert!(reply.contains(" OK"), "APPEND refused: {reply}");
        }
        c.command("LOGOUT");
    }

    /// Every folder of `user` (server names, decoded), sorted.
    pub fn folders(&self, user: &str) -> Vec<String> {
        let mut c = self.client(user);
        let out = c.command("LIST \"\" \"*\"");
        let mut names: Vec<String> = out
            .lines()
            .filter(|l| l.starts_with("* LIST "))
            .filter(|l| !l.contains("\\Noselect") && !l.contains("\\NonExistent"))
            .filter_map(list_name)
            .collect();
        names.sort();
        c.command("LOGOUT");
        names
    }

    /// Every message of `folder` (a server name, decoded), in UID order, exact bytes.
    pub fn messages(&self, user: &str, folder: &str) -> Vec<StoredMessage> {
        let mut c = self.client(user);
        let sel = c.command(&format!("EXAMINE {}", quote(&super::mutf7(folder))));
        let last = sel.lines().last().unwrap_or_default();
        if last.contains(" NO") && last.contains("does not exist") {
            return Vec::new();
        }
        assert!(last.contains(" OK"), "EXAMINE {folder}: {sel}");
        let got = c.fetch_all();
        c.command("LOGOUT");
        got
    }

    /// Adds flags (e.g. `\Flagged $Custom`) to a message of `folder` by UID.
    pub fn set_flags(&self, user: &str, folder: &str, uid: u32, flags: &str) {
        let mut c = self.client(user);
        c.command(&format!("SELECT {}", quote(&super::mutf7(folder))));
        let r = c.command(&format!("UID STORE {uid} +FLAGS ({flags})"));
        assert!(r.lines().last().unwrap_or_default().contains(" OK"), "{r}");
        c.command("LOGOUT");
    }

    /// Sets `user`'s storage quota so the mail already there fills `percent` of it:
    /// Cyrus then warns on SELECT (`* NO [ALERT] Mailbox is at N% of STORAGE quota`;
    /// each imapd process at most once per 10 minutes, so [`Cyrus::restart`] after).
    pub fn fill_quota(&self, user: &str, percent: u32) {
        let mut a = self.client(ADMIN.0);
        let root = format!("user.{user}");
        a.command(&format!("SETQUOTA {} (STORAGE 10000000)", quote(&root)));
        let q = a.command(&format!("GETQUOTA {}", quote(&root)));
        let used: u64 = q
            .split("STORAGE ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no STORAGE usage in {q}"));
        assert!(
            used >= 100,
            "{used} KiB stored for {user}: too little for a quota in whole KiB to hit a percentage: {q}"
        );
        let limit = used * 100 / u64::from(percent.max(1)) + 1;
        let r = a.command(&format!("SETQUOTA {} (STORAGE {limit})", quote(&root)));
        assert!(r.lines().last().unwrap_or_default().contains(" OK"), "{r}");
        a.command("LOGOUT");
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stop()));
    }
}

/// The user and group Cyrus runs as: `mail` when we are root (the packages' own
/// `cyrus` user is not created, they are not installed), else ourselves.
fn run_as() -> (String, String) {
    let me = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    if me == 0 {
        return ("mail".into(), "mail".into());
    }
    let name = |file: &str, id: u32| {
        fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == id.to_string()).then(|| f[0].to_string())
            })
            .unwrap_or_else(|| panic!("no name for id {id} in {file}"))
    };
    let gid = fs::metadata("/proc/self").map(|m| m.gid()).unwrap_or(0);
    (name("/etc/passwd", me), name("/etc/group", gid))
}

/// Gives the test bed to the user Cyrus runs as (when we are root).
fn chown_tree(root: &Path, user: &str) {
    if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        return;
    }
    let out = Command::new("chown")
        .args(["-R", &format!("{user}:{user}")])
        .arg(root)
        .output()
        .expect("chown runs");
    assert!(
        out.status.success(),
        "chown: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The mailbox name of a `* LIST (...) "." name` line, decoded from modified UTF-7.
fn list_name(line: &str) -> Option<String> {
    let rest = line.rsplit_once(')')?.1.trim();
    // The delimiter ("." or NIL), then the name (quoted or an atom).
    let rest = if let Some(r) = rest.strip_prefix('"') {
        r.split_once('"')?.1.trim()
    } else {
        rest.split_once(' ')?.1.trim()
    };
    let name = match rest.strip_prefix('"') {
        Some(q) => q
            .strip_suffix('"')?
            .replace("\\\"", "\"")
            .replace("\\\\", "\\"),
        None => rest.to_string(),
    };
    super::imap::mutf7_decode(&name)
}
