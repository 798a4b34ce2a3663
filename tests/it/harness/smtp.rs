//! A real SMTP server on 127.0.0.1 for the daemon to talk to: Debian's `aiosmtpd`
//! (python3-aiosmtpd) run as a subprocess with a small handler that writes each message
//! it accepts to a directory, with its envelope beside it.
//!
//! ```ignore
//! let mut sink = SmtpSink::start();               // or SmtpSink::reserve() + .up()
//! // ... daemon with smtp: {host: 127.0.0.1, port: sink.port(), tls: none, ...}
//! let got = sink.wait_for(2, Duration::from_secs(10));
//! sink.down();                                     // the server disappears; port kept
//! ```

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, poll, TempDir};

/// The handler: each accepted message becomes `N.eml` (exact bytes) plus `N.env`
/// (MAIL FROM on the first line, then one RCPT TO per line), written atomically.
const SERVER: &str = r#"
import os, sys, time, signal
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

port, out = int(sys.argv[1]), sys.argv[2]
user = os.environ.get("SINK_USER")
password = os.environ.get("SINK_PASSWORD")
count = [0]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        count[0] += 1
        name = "%d-%06d" % (time.time_ns(), count[0])
        for ext, data in (("eml", envelope.original_content),
                          ("env", "\n".join([envelope.mail_from] + list(envelope.rcpt_tos)).encode())):
            tmp = os.path.join(out, "." + name + "." + ext)
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, os.path.join(out, name + "." + ext))
        return "250 OK queued"

class OauthHandler(Handler):
    # SASL XOAUTH2: "user=U^Aauth=Bearer T^A^A", the token checked at the OAuth2 test
    # provider's introspection endpoint (RFC 7662), as Dovecot checks IMAP logins.
    async def auth_XOAUTH2(self, server, args):
        import base64, json, urllib.parse, urllib.request
        if len(args) > 1:
            data = base64.b64decode(args[1])
        else:
            data = await server.challenge_auth("")
            if not isinstance(data, bytes):
                return AuthResult(success=False, handled=False)
        fields = dict(f.split(b"=", 1) for f in data.split(b"\x01") if b"=" in f)
        login = fields.get(b"user", b"").decode()
        token = fields.get(b"auth", b"").decode().removeprefix("Bearer ")
        req = urllib.request.Request(os.environ["SINK_INTROSPECT"],
                                     data=urllib.parse.urlencode({"token": token}).encode())
        with urllib.request.urlopen(req, timeout=5) as r:
            info = json.load(r)
        ok = info.get("active") is True and info.get("username") == login
        return AuthResult(success=ok, handled=False)

def auth(server, session, envelope, mechanism, auth_data):
    ok = user is not None and auth_data.login.decode() == user and auth_data.password.decode() == password
    # handled=False: aiosmtpd answers 535 itself (with the default, it answers nothing).
    return AuthResult(success=ok, handled=False)

kw = {}
handler = Handler()
if user is not None:
    kw = dict(authenticator=auth, auth_required=True, auth_require_tls=False)
if os.environ.get("SINK_INTROSPECT"):
    handler = OauthHandler()
    kw = dict(auth_required=True, auth_require_tls=False, auth_exclude_mechanism=["LOGIN", "PLAIN"])
tls = os.environ.get("SINK_TLS")
if tls:
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.environ["SINK_CERT"], os.environ["SINK_KEY"])
    if tls == "implicit":
        kw["ssl_context"] = ctx
    else:
        kw["tls_context"] = ctx
        kw["require_starttls"] = True
c = Controller(handler, hostname="127.0.0.1", port=port, **kw)
c.start()
print("ready", flush=True)
signal.signal(signal.SIGTERM, lambda *a: (c.stop(), sys.exit(0)))
while True:
    time.sleep(3600)
"#;

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The message exactly as sent (DATA).
    pub raw: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

impl Received {
    /// The value of the first header called `name` (unfolded), if any.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every header (name, value), unfolded, in order.
    pub fn headers(&self) -> Vec<(String, String)> {
        let head = self
            .raw
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .replace("\r\n", "\n");
        let mut out: Vec<(String, String)> = Vec::new();
        for line in head.split('\n') {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((n, v)) = line.split_once(':') {
                out.push((n.to_string(), v.trim().to_string()));
            }
        }
        out
    }

    /// The body with quoted-printable undone (soft line breaks joined, `=XX` decoded):
    /// what a reader sees of every text part.
    pub fn text(&self) -> String {
        let body = self.body().replace("=\r\n", "");
        let b = body.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (b[i], hex) {
                (b'=', Some(v)) => {
                    out.push(v);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The body (after the header).
    pub fn body(&self) -> String {
        self.raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

/// An SMTP server on 127.0.0.1 that stores what it receives.
pub struct SmtpSink {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    auth: Option<(String, String)>,
    /// `implicit` or `starttls`, with the test CA's certificate for localhost/127.0.0.1.
    tls: Option<String>,
    /// XOAUTH2 only, tokens checked at this RFC 7662 introspection URL.
    introspect: Option<String>,
}

impl SmtpSink {
    /// A port for the server, without starting it yet (to test an outage first).
    pub fn reserve() -> SmtpSink {
        let dir = TempDir::new("smtp");
        fs::create_dir(dir.path().join("inbox")).expect("mkdir inbox");
        fs::write(dir.path().join("server.py"), SERVER).expect("write server.py");
        SmtpSink {
            dir,
            port: free_port(),
            child: None,
            auth: None,
            tls: None,
            introspect: None,
        }
    }

    /// A running server (no authentication).
    pub fn start() -> SmtpSink {
        let mut s = Self::reserve();
        s.up();
        s
    }

    /// A running server that requires LOGIN/PLAIN with these credentials.
    pub fn start_with_auth(user: &str, password: &str) -> SmtpSink {
        let mut s = Self::reserve();
        s.auth = Some((user.to_string(), password.to_string()));
        s.up();
        s
    }

    /// A running server speaking implicit TLS (`implicit`) or requiring STARTTLS
    /// (`starttls`) with a certificate from a throwaway CA (see [`SmtpSink::ca_file`]),
    /// and requiring LOGIN/PLAIN with these credentials.
    pub fn start_tls(mode: &str, user: &str, password: &str) -> SmtpSink {
        let mut s = Self::reserve();
        super::tls::make_certs(&s.dir.path().join("tls"), super::tls::DEFAULT_NAMES);
        s.auth = Some((user.to_string(), password.to_string()));
        s.tls = Some(mode.to_string());
        s.up();
        s
    }

    /// A running server that requires XOAUTH2 (and offers nothing else), accepting access
    /// tokens the introspection endpoint at `url` calls active for the login's user.
    pub fn start_xoauth2(url: &str) -> SmtpSink {
        let mut s = Self::reserve();
        s.introspect = Some(url.to_string());
        s.up();
        s
    }

    /// The CA that signed the TLS server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn inbox(&self) -> PathBuf {
        self.dir.path().join("inbox")
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    pub fn up(&mut self) {
        assert!(self.child.is_none(), "the SMTP sink is already running");
        let mut cmd = Command::new(python());
        cmd.arg(self.dir.path().join("server.py"))
            .arg(self.port.to_string())
            .arg(self.inbox())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("server.log"))
                    .expect("open server.log"),
            );
        if let Some((u, p)) = &self.auth {
            cmd.env("SINK_USER", u).env("SINK_PASSWORD", p);
        }
        if let Some(url) = &self.introspect {
            cmd.env("SINK_INTROSPECT", url);
        }
        if let Some(mode) = &self.tls {
            let tls = self.dir.path().join("tls");
            cmd.env("SINK_TLS", mode)
                .env("SINK_CERT", tls.join("server.pem"))
                .env("SINK_KEY", tls.join("server.key"));
        }
        let child = cmd
            .spawn()
            .expect("python3 runs (apt-get install python3-aiosmtpd)");
        self.child = Some(child);
        let port = self.port;
        let ready = poll(Duration::from_secs(15), || {
            TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        });
        assert!(
            ready.is_some(),
            "the SMTP sink did not start on port {port}: {}",
            fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// Stops the server (the port stays ours; connections are refused meanwhile).
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        read_inbox(&self.inbox())
    }

    /// Waits until at least `n` messages arrived; returns all of them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        poll(timeout, || {
            let m = self.messages();
            (m.len() >= n).then_some(m)
        })
        .unwrap_or_else(|| self.messages())
    }
}

/// Debian's Python, where apt installs python3-aiosmtpd (a pyenv or venv `python3`
/// earlier in PATH would not see it).
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn read_inbox(dir: &Path) -> Vec<Received> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".eml") && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| {
            let stem = n.trim_end_matches(".eml");
            let raw = fs::read(dir.join(&n)).ok()?;
            let env = fs::read_to_string(dir.join(format!("{stem}.env"))).ok()?;
            let mut lines = env.lines().map(String::from);
            Some(Received {
                raw: String::from_utf8_lossy(&raw).into_owned(),
                mail_from: lines.next().unwrap_or_default(),
                rcpt_to: lines.collect(),
            })
        })
        .collect()
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.down();
    }
}
