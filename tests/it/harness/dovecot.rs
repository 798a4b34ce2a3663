//! A throwaway, self-contained Dovecot 2.3 per test: its own temp dir, config,
//! `base_dir`, `state_dir`, log and free ports. Nothing is read from /etc/dovecot.

use super::imap::ImapClient;
use super::process::{self, Output, SIGKILL, SIGTERM};
use super::tmp::{self, TempDir};
use super::{free_port, tls};
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long Dovecot may take to accept a LOGIN after start (it usually takes ~30 ms).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one doveadm call may take.
const DOVEADM_TIMEOUT: Duration = Duration::from_secs(60);

/// Dovecot 2.3.19's post-login CAPABILITY for this configuration; `without_move`,
/// `without_idle` and `without_namespace` advertise this list minus the dropped word
/// (`imap_capability`).
pub const POST_LOGIN_CAPABILITIES: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT \
SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE \
UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT \
SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW \
STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE";

/// What kind of Dovecot to start.
#[derive(Clone, Debug)]
pub struct DovecotOptions {
    /// (user, password) pairs; default alice/alicepw and bob/bobpw.
    pub users: Vec<(String, String)>,
    /// Advertise the post-login capabilities without MOVE (COPY+EXPUNGE fallback path).
    pub without_move: bool,
    /// Advertise the capabilities without IDLE (polling path).
    pub without_idle: bool,
    /// Advertise the capabilities without NAMESPACE (the client must find the prefix
    /// some other way).
    pub without_namespace: bool,
    /// Hierarchy separator of the single namespace: '/' (default) or '.'.
    pub separator: char,
    /// Prefix of that namespace: "" (default), or "INBOX." as shared-hosting control
    /// panels (cPanel, Plesk) set it up, with separator '.'.
    pub prefix: String,
    /// Also listen with implicit TLS and offer STARTTLS, with a test CA made by `openssl`.
    pub tls: bool,
    /// Appended to the generated dovecot.conf (plugins such as acl or quota); `{dir}` is
    /// replaced by the test bed's directory.
    pub extra_config: String,
    /// With `tls`: the names the server certificate is issued for (DNS names or IP
    /// addresses); empty means "localhost" and 127.0.0.1, the address tests connect to.
    pub cert_names: Vec<String>,
    /// Also accept XOAUTH2 and OAUTHBEARER, checking each token at this RFC 7662
    /// introspection URL (`oauth2` passdb, `introspection_mode = post`); see `harness::oauth`.
    pub oauth2_introspection: Option<String>,
}

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions {
            users: vec![
                ("alice".into(), "alicepw".into()),
                ("bob".into(), "bobpw".into()),
            ],
            without_move: false,
            without_idle: false,
            without_namespace: false,
            separator: '/',
            prefix: String::new(),
            tls: false,
            extra_config: String::new(),
            cert_names: Vec::new(),
            oauth2_introspection: None,
        }
    }
}

/// A running throwaway Dovecot. Drop stops it and removes its temp dir, unless
/// `MAILTRIAGE_KEEP_TESTBED=1` (then the path is printed and the dir is kept).
pub struct Dovecot {
    pub(super) opts: DovecotOptions,
    pub(super) dir: TempDir,
    pub(super) conf: PathBuf,
    pub(super) owner: (u32, u32),
    pub(super) folder_dirs: Mutex<HashMap<(String, String), PathBuf>>,
    port: u16,
    tls_port: Option<u16>,
    ca: Option<PathBuf>,
    master: Option<Child>,
    users: Mutex<Users>,
    /// Whether start() succeeded (its own panic already carries the log).
    started: bool,
}

/// The passwd-file's content and the last mtime we gave it.
struct Users {
    list: Vec<(String, String)>,
    stamp: i64,
}

impl Dovecot {
    /// Starts Dovecot and waits until a LOGIN succeeds; panics with the log tail if not.
    pub fn start(opts: DovecotOptions) -> Dovecot {
        assert!(
            matches!(opts.separator, '/' | '.'),
            "separator must be '/' or '.'"
        );
        reap_stale_testbeds();
        let dir = TempDir::new("dovecot");
        let root = dir.path().to_path_buf();
        let owner = mail_owner(&root);
        let mail = root.join("mail");
        fs::create_dir(&mail).unwrap_or_else(|e| panic!("mkdir {}: {e}", mail.display()));
        std::os::unix::fs::chown(&mail, Some(owner.0), Some(owner.1))
            .unwrap_or_else(|e| panic!("chown {}: {e}", mail.display()));
        let ca = opts.tls.then(|| {
            let names: Vec<&str> = match opts.cert_names.is_empty() {
                true => tls::DEFAULT_NAMES.to_vec(),
                false => opts.cert_names.iter().map(String::as_str).collect(),
            };
            tls::make_certs(&root.join("tls"), &names)
        });
        let mut dc = Dovecot {
            users: Mutex::new(Users {
                list: opts.users.clone(),
                stamp: 0,
            }),
            opts,
            conf: root.join("dovecot.conf"),
            owner,
            folder_dirs: Mutex::new(HashMap::new()),
            dir,
            port: 0,
            tls_port: None,
            ca,
            master: None,
            started: false,
        };
        dc.write_users();
        // A port found free may be taken by someone else before Dovecot binds it:
        // then pick new ports and try again.
        for attempt in 1..=3 {
            dc.port = free_port();
            dc.tls_port = dc.opts.tls.then(free_port);
            match dc.launch() {
                Ok(()) => {
                    dc.started = true;
                    return dc;
                }
                Err(e) if e.contains("Address already in use") && attempt < 3 => continue,
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!()
    }

    /// What this Dovecot was started with.
    pub fn options(&self) -> &DovecotOptions {
        &self.opts
    }

    /// Plain IMAP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Implicit-TLS (imaps) port on 127.0.0.1, when started with `tls`.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// PEM file of the test CA that signed the server certificate, when started with `tls`.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca.clone()
    }

    /// The instance's temp dir (config, log, mail, run, state, tls).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The user's Maildir root (`~/Maildir`, which is INBOX).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir().join("mail").join(user).join("Maildir")
    }

    /// Dovecot's log so far (everything: info, warnings, errors).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.dir().join("dovecot.log")).unwrap_or_default())
            .into_owned()
    }

    /// Stops Dovecot (clients get `* BYE` and are disconnected) and, on the same ports
    /// with the same data, starts it again; waits until LOGIN works.
    pub fn restart(&mut self) {
        self.stop();
        // Our stop already waited for the listeners to close; a foreign process that
        // grabbed the port in between would make this fail with a clear message.
        if let Err(e) = self.launch() {
            panic!("restart: {e}");
        }
    }

    /// Stops Dovecot like `systemctl stop` would: every session gets `* BYE` and is
    /// disconnected; returns once the ports refuse connections. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut master) = self.master.take() else {
            return;
        };
        let pid = master.id();
        // The master alone leaves logged-in sessions running (orphaned, still serving
        // their clients), whatever shutdown_clients says: stop them ourselves. It also
        // sleeps a fixed second for its `log` child, which holds the listening sockets:
        // once only `log` is left, kill both.
        let stop_sessions = || {
            let kids = process::children(pid);
            for (kid, comm) in &kids {
                if comm == "imap" || comm == "imap-login" {
                    process::signal(*kid, SIGTERM);
                }
            }
            kids
        };
        stop_sessions();
        process::signal(pid, SIGTERM);
        let only_log_left = process::poll(Duration::from_secs(10), || {
            let kids = stop_sessions();
            kids.iter().all(|(_, comm)| comm == "log").then_some(kids)
        });
        let log_size = || {
            fs::metadata(self.dir().join("dovecot.log"))
                .map(|m| m.len())
                .ok()
        };
        let mut last = log_size();
        // Let the log process write out what the dying processes sent it.
        process::poll(Duration::from_millis(300), || {
            std::thread::sleep(Duration::from_millis(15));
            let now = log_size();
            (std::mem::replace(&mut last, now) == now).then_some(())
        });
        for (kid, _) in only_log_left.unwrap_or_else(|| process::children(pid)) {
            process::signal(kid, SIGKILL);
        }
        let _ = master.kill();
        let _ = master.wait();
        let ports: Vec<u16> = std::iter::once(self.port).chain(self.tls_port).collect();
        let closed = process::poll(Duration::from_secs(10), || {
            ports
                .iter()
                .all(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
                .then_some(())
        });
        if closed.is_none() {
            self.fail("stop: the IMAP ports still listen 10 s after Dovecot was stopped");
        }
    }

    /// Changes (or adds) a user's password in the passwd-file and waits until Dovecot
    /// accepts it (Dovecot re-reads the file when its mtime or size changes, at most
    /// once a second).
    pub fn set_password(&self, user: &str, password: &str) {
        {
            let mut users = self.users.lock().unwrap();
            match users.list.iter_mut().find(|(u, _)| u == user) {
                Some(entry) => entry.1 = password.to_string(),
                None => users.list.push((user.to_string(), password.to_string())),
            }
        }
        self.write_users();
        let accepted = process::poll(Duration::from_secs(10), || {
            let mut c = ImapClient::try_connect(self.port, Duration::from_secs(5)).ok()?;
            c.try_login(user, password)?.contains(" OK").then_some(())
        });
        if accepted.is_none() {
            self.fail(&format!(
                "set_password: LOGIN {user} with the new password still fails after 10 s"
            ));
        }
    }

    /// Runs `doveadm -c CONF ARGS` (stdin optional); panics with stderr and the log tail
    /// unless it exits 0.
    pub(super) fn doveadm(&self, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        match self.try_doveadm(args, stdin) {
            Ok(out) if out.status.success() => out.stdout,
            Ok(out) => self.fail(&format!(
                "doveadm {args:?} failed ({}):\n{}",
                out.status, out.stderr
            )),
            Err(e) => self.fail(&e),
        }
    }

    /// Like `doveadm` but hands back the result, whatever the exit status.
    pub(super) fn try_doveadm(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<Output, String> {
        assert!(
            self.master.is_some(),
            "doveadm {args:?}: Dovecot is stopped (doveadm needs its auth socket)"
        );
        let mut cmd = Command::new("doveadm");
        cmd.arg("-c").arg(&self.conf).args(args);
        process::run(cmd, stdin, DOVEADM_TIMEOUT)
    }

    /// Panics with `msg`, the last lines of Dovecot's log and the temp dir's path.
    pub(super) fn fail(&self, msg: &str) -> ! {
        panic!("{msg}\n{}", self.log_tail(40))
    }

    fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(n)..].join("\n");
        let stderr = fs::read_to_string(self.dir().join("dovecot.stderr")).unwrap_or_default();
        format!(
            "--- Dovecot log tail ({}) ---\n{tail}\n--- Dovecot stderr ---\n{stderr}--- end ---",
            self.dir().display()
        )
    }

    /// Writes the config, wipes `base_dir`, starts the master in the foreground and
    /// waits until a LOGIN succeeds.
    fn launch(&mut self) -> Result<(), String> {
        fs::write(&self.conf, self.config()).map_err(|e| format!("writing config: {e}"))?;
        if let Some(url) = &self.opts.oauth2_introspection {
            // Every token is checked at the introspection endpoint (no local cache), and
            // its `username` must be the SASL user.
            let ext = format!(
                "introspection_mode = post\nintrospection_url = {url}\nusername_attribute = username\n\
                 active_attribute = active\nactive_value = true\nforce_introspection = yes\ntimeout_msecs = 5000\n"
            );
            fs::write(self.dir().join("oauth2.conf.ext"), ext)
                .map_err(|e| format!("writing oauth2.conf.ext: {e}"))?;
        }
        let run = self.dir().join("run");
        // Stale sockets from a previous master make auth retry for 5 s: start clean.
        let _ = fs::remove_dir_all(&run);
        fs::create_dir(&run).map_err(|e| format!("mkdir {}: {e}", run.display()))?;
        fs::create_dir_all(self.dir().join("state")).map_err(|e| format!("mkdir state: {e}"))?;
        let stderr =
            fs::File::create(self.dir().join("dovecot.stderr")).map_err(|e| e.to_string())?;
        let child = Command::new(dovecot_binary())
            .arg("-F")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().map_err(|e| e.to_string())?)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot run `dovecot` (is dovecot-core installed?): {e}"))?;
        self.master = Some(child);
        let probe_user = self.users.lock().unwrap().list.first().cloned();
        let ready = process::poll(START_TIMEOUT, || {
            if let Ok(Some(status)) = self.master.as_mut()?.try_wait() {
                return Some(Err(format!("dovecot exited during startup ({status})")));
            }
            let mut c = ImapClient::try_connect(self.port, Duration::from_secs(2)).ok()?;
            c.set_timeout(Duration::from_secs(2));
            let reply = match &probe_user {
                Some((user, password)) => c.try_login(user, password)?,
                None => c.try_login("nobody-probe", "x")?,
            };
            let ok = if probe_user.is_some() {
                reply.contains(" OK")
            } else {
                reply.contains(" NO")
            };
            ok.then_some(Ok(()))
        });
        let err = match ready {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => e,
            None => format!(
                "Dovecot did not accept a LOGIN on port {} within {START_TIMEOUT:?}",
                self.port
            ),
        };
        let msg = format!("{err}\n{}", self.log_tail(40));
        if let Some(mut m) = self.master.take() {
            let _ = m.kill();
            let _ = m.wait();
        }
        Err(msg)
    }

    /// Rewrites the passwd-file atomically with an mtime Dovecot has not seen before.
    fn write_users(&self) {
        let mut users = self.users.lock().unwrap();
        let mut text = String::new();
        for (user, password) in &users.list {
            let bad = |s: &str| s.is_empty() || s.contains([':', '\n', '\r']);
            assert!(
                !bad(user) && !bad(password),
                "user/password unusable in a passwd-file: {user:?}"
            );
            text.push_str(&format!("{user}:{{PLAIN}}{password}::::::\n"));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        users.stamp = now.max(users.stamp + 1);
        let path = self.dir().join("users");
        let tmp = self.dir().join("users.tmp");
        let file = fs::File::create(&tmp).and_then(|mut f| {
            std::io::Write::write_all(&mut f, text.as_bytes())?;
            f.set_modified(UNIX_EPOCH + Duration::from_secs(users.stamp as u64))
        });
        file.and_then(|()| fs::rename(&tmp, &path))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    fn config(&self) -> String {
        let d = self.dir().display();
        let (uid, gid) = self.owner;
        let instance = self
            .dir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut caps: Vec<&str> = POST_LOGIN_CAPABILITIES.split(' ').collect();
        caps.retain(|c| {
            !(self.opts.without_move && *c == "MOVE"
                || self.opts.without_idle && *c == "IDLE"
                || self.opts.without_namespace && *c == "NAMESPACE")
        });
        let capability =
            if self.opts.without_move || self.opts.without_idle || self.opts.without_namespace {
                format!("imap_capability = {}\n", caps.join(" "))
            } else {
                String::new()
            };
        let ssl = match self.opts.tls {
            true => format!(
                "ssl = yes\nssl_cert = <{d}/tls/server.pem\nssl_key = <{d}/tls/server.key\n"
            ),
            false => "ssl = no\n".to_string(),
        };
        let accounts = if running_as_root() {
            // The unprivileged accounts that ship with dovecot-core.
            "default_internal_user = dovecot\ndefault_login_user = dovenull\n".to_string()
        } else {
            // Unprivileged: every process runs as us, with no chroot.
            let (me, group) = (name_of("/etc/passwd", uid), name_of("/etc/group", gid));
            format!(
                "default_internal_user = {me}\ndefault_internal_group = {group}\n\
                 default_login_user = {me}\nservice imap-login {{\n  chroot =\n}}\n\
                 service anvil {{\n  chroot =\n}}\nservice auth-worker {{\n  user = {me}\n}}\n"
            )
        };
        let extra = self.opts.extra_config.replace("{dir}", &d.to_string());
        let (mechanisms, passwd_mechanisms, oauth2_passdb) = match &self.opts.oauth2_introspection {
            Some(_) => (
                "plain login xoauth2 oauthbearer",
                "  mechanisms = plain login\n",
                format!("passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {d}/oauth2.conf.ext\n}}\n"),
            ),
            None => ("plain login", "", String::new()),
        };
        let sep = self.opts.separator;
        let prefix = &self.opts.prefix;
        let port = self.port;
        let tls_port = self.tls_port.unwrap_or(0);
        format!(
            r#"# Generated by tests/it/harness: a self-contained throwaway Dovecot 2.3.
instance_name = {instance}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
debug_log_path = {d}/dovecot.log
auth_verbose = yes
protocols = imap
listen = 127.0.0.1
{ssl}disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
# Failed logins answer at once and leave no per-IP penalty for the next login.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{accounts}first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
passdb {{
  driver = passwd-file
{passwd_mechanisms}  args = scheme=PLAIN username_format=%u {d}/users
}}
{oauth2_passdb}userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
  default_fields = uid={uid} gid={gid} home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = 1000
# Room for many parallel IDLE sessions, within the usual 1024 open files.
default_process_limit = 500
default_client_limit = 1000
namespace inbox {{
  inbox = yes
  separator = {sep}
  prefix = {prefix}
  mailbox Drafts {{
    special_use = \Drafts
  }}
  mailbox Sent {{
    special_use = \Sent
  }}
  mailbox Trash {{
    special_use = \Trash
  }}
  mailbox Junk {{
    special_use = \Junk
  }}
  mailbox Archive {{
    special_use = \Archive
  }}
}}
{capability}service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
{extra}
"#
        )
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if std::thread::panicking() && self.started {
            eprintln!("{}", self.log_tail(30));
        }
        // Never panic in drop: a panic while unwinding aborts the whole test binary.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.stop()));
        if std::env::var_os("MAILTRIAGE_KEEP_TESTBED").is_some_and(|v| v == "1") {
            self.dir.keep();
            eprintln!("MAILTRIAGE_KEEP_TESTBED=1: kept {}", self.dir().display());
        }
    }
}

/// The uid/gid that owns all mail: 5000 when we are root (Dovecot refuses uid 0),
/// else our own.
fn mail_owner(scratch: &Path) -> (u32, u32) {
    let meta = fs::metadata(scratch).unwrap_or_else(|e| panic!("stat {}: {e}", scratch.display()));
    if meta.uid() == 0 {
        (5000, 5000)
    } else {
        (meta.uid(), meta.gid())
    }
}

/// `dovecot` from PATH, else /usr/sbin/dovecot (not in PATH for most non-root users).
fn dovecot_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("dovecot"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| PathBuf::from("/usr/sbin/dovecot"))
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The name of numeric id `id` in /etc/passwd or /etc/group.
fn name_of(file: &str, id: u32) -> String {
    let text = fs::read_to_string(file).unwrap_or_default();
    let found = text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == id.to_string()).then(|| f[0].to_string())
    });
    found.unwrap_or_else(|| panic!("no name for id {id} in {file} (Dovecot needs one)"))
}

/// Once per process: stop Dovecots left running by test processes that died (killed
/// or aborted before Drop ran) and delete their temp dirs.
fn reap_stale_testbeds() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let stale = tmp::stale_dirs();
        let mut masters = Vec::new();
        for dir in &stale {
            let pid_file = dir.join("run").join("master.pid");
            let pid = fs::read_to_string(pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            let Some(pid) = pid else { continue };
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if String::from_utf8_lossy(&cmdline).contains(&name) {
                process::signal(pid, SIGKILL);
                masters.push(pid);
            }
        }
        process::poll(Duration::from_secs(5), || {
            masters
                .iter()
                .all(|&pid| !process::alive(pid))
                .then_some(())
        });
        for dir in stale {
            let _ = fs::remove_dir_all(&dir);
        }
    });
}
