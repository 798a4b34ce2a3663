//! A stand-in OAuth2 provider on 127.0.0.1 (an outside party, like Google or Microsoft),
//! served by a few threads of std: enough HTTP/1.1 for Dovecot's `oauth2` passdb and for
//! mailtriage's token requests.
//!
//! - `POST /introspect` (RFC 7662): `{"active":true,"username":…}` for a live access token.
//! - `POST /token` (RFC 6749): `refresh_token` grants, `authorization_code` grants whose
//!   PKCE verifier is checked against the S256 challenge of the authorization URL, and
//!   device-code grants (RFC 8628) answered from a script (`authorization_pending`,
//!   `slow_down`, …) before they succeed.
//! - `POST /device`: a device authorization with a 1 s polling interval.
//!
//! Every request is recorded (path, form, time) for the tests to inspect.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;

/// One request as the provider saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub form: HashMap<String, String>,
    pub at: Instant,
}

struct Access {
    user: String,
    expires: Instant,
    active: bool,
}

struct Code {
    user: String,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
struct State {
    access: HashMap<String, Access>,
    /// refresh token → (user, revoked)
    refresh: HashMap<String, (String, bool)>,
    codes: HashMap<String, Code>,
    /// device code → (user, errors to answer before success)
    device: HashMap<String, (String, VecDeque<String>)>,
    /// Next device authorization: (user, script).
    next_device: Option<(String, Vec<String>)>,
    access_ttl: Option<Duration>,
    seen: Vec<Seen>,
}

/// The running provider; stops on drop.
pub struct OauthProvider {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    counter: AtomicU64,
}

impl OauthProvider {
    /// Starts listening on a free loopback port.
    pub fn start() -> OauthProvider {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(Mutex::new(State {
            access_ttl: Some(Duration::from_secs(3600)),
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        OauthProvider {
            port,
            state,
            stop,
            counter: AtomicU64::new(0),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn fresh(&self, kind: &str) -> String {
        format!(
            "{kind}-{}-{}",
            self.counter.fetch_add(1, Ordering::SeqCst),
            std::process::id()
        )
    }

    /// A new access token for `user`, valid for `ttl`.
    pub fn mint(&self, user: &str, ttl: Duration) -> String {
        let t = self.fresh("at");
        mint_into(&mut self.state.lock().unwrap(), &t, user, ttl);
        t
    }

    /// Makes an access token inactive at once.
    pub fn revoke_access(&self, token: &str) {
        if let Some(a) = self.state.lock().unwrap().access.get_mut(token) {
            a.active = false;
        }
    }

    /// Makes every access token issued so far inactive.
    pub fn revoke_all_access(&self) {
        for a in self.state.lock().unwrap().access.values_mut() {
            a.active = false;
        }
    }

    /// A new refresh token for `user`.
    pub fn add_refresh(&self, user: &str) -> String {
        let t = self.fresh("rt");
        self.state
            .lock()
            .unwrap()
            .refresh
            .insert(t.clone(), (user.to_string(), false));
        t
    }

    /// The provider forgets (revokes) a refresh token.
    pub fn revoke_refresh(&self, token: &str) {
        if let Some(r) = self.state.lock().unwrap().refresh.get_mut(token) {
            r.1 = true;
        }
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_access_ttl(&self, ttl: Duration) {
        self.state.lock().unwrap().access_ttl = Some(ttl);
    }

    /// What the user's browser brings back after consent: a code bound to the PKCE
    /// challenge and redirect URI of the authorization URL.
    pub fn add_code(&self, user: &str, challenge: &str, redirect_uri: &str) -> String {
        let c = self.fresh("code");
        self.state.lock().unwrap().codes.insert(
            c.clone(),
            Code {
                user: user.to_string(),
                challenge: challenge.to_string(),
                redirect_uri: redirect_uri.to_string(),
            },
        );
        c
    }

    /// The next device authorization is for `user`; its polls get these errors first.
    pub fn script_device(&self, user: &str, errors: &[&str]) {
        self.state.lock().unwrap().next_device = Some((
            user.to_string(),
            errors.iter().map(|s| s.to_string()).collect(),
        ));
    }

    /// Requests seen at `path`, oldest first.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    /// Token requests with this grant type.
    pub fn grants(&self, grant_type: &str) -> Vec<Seen> {
        self.seen("/token")
            .into_iter()
            .filter(|s| s.form.get("grant_type").map(String::as_str) == Some(grant_type))
            .collect()
    }
}

impl Drop for OauthProvider {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn mint_into(st: &mut State, token: &str, user: &str, ttl: Duration) {
    st.access.insert(
        token.to_string(),
        Access {
            user: user.to_string(),
            expires: Instant::now() + ttl,
            active: true,
        },
    );
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Some((path, headers, body)) = read_request(&mut conn) else {
        return;
    };
    let form: HashMap<String, String> = oauth2::url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut st = state.lock().unwrap();
    st.seen.push(Seen {
        path: path.clone(),
        form: form.clone(),
        at: Instant::now(),
    });
    let (status, json) = match path.as_str() {
        "/introspect" => {
            let bearer = headers
                .get("authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::to_string);
            let token = form.get("token").cloned().or(bearer).unwrap_or_default();
            match st.access.get(&token) {
                Some(a) if a.active && Instant::now() < a.expires => (
                    200,
                    serde_json::json!({"active": true, "username": a.user, "scope": "mail"}),
                ),
                _ => (200, serde_json::json!({"active": false})),
            }
        }
        "/device" => {
            let (user, script) = st
                .next_device
                .take()
                .unwrap_or_else(|| ("alice".into(), Vec::new()));
            let code = format!("dc-{}", st.seen.len());
            st.device.insert(code.clone(), (user, script.into()));
            (
                200,
                serde_json::json!({
                    "device_code": code,
                    "user_code": "WDJB-MJHT",
                    "verification_uri": "http://127.0.0.1/devicelogin",
                    "expires_in": 120,
                    "interval": 1,
                }),
            )
        }
        "/token" => token(&mut st, &form),
        _ => (404, serde_json::json!({"error": "not_found"})),
    };
    drop(st);
    let body = json.to_string();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.flush();
}

fn error(code: &str, desc: &str) -> (u16, serde_json::Value) {
    (
        400,
        serde_json::json!({"error": code, "error_description": desc}),
    )
}

fn issue(st: &mut State, user: &str, with_refresh: bool) -> (u16, serde_json::Value) {
    let n = st.seen.len();
    let access = format!("at-issued-{n}-{}", std::process::id());
    let ttl = st.access_ttl.unwrap_or(Duration::from_secs(3600));
    mint_into(st, &access, user, ttl);
    let mut v = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "scope": "mail",
    });
    if with_refresh {
        let refresh = format!("rt-issued-{n}-{}", std::process::id());
        st.refresh
            .insert(refresh.clone(), (user.to_string(), false));
        v["refresh_token"] = serde_json::Value::String(refresh);
    }
    (200, v)
}

fn token(st: &mut State, form: &HashMap<String, String>) -> (u16, serde_json::Value) {
    if form.get("client_id").map(String::as_str) != Some("mailtriage-test") {
        return error("invalid_client", "unknown client");
    }
    match form.get("grant_type").map(String::as_str) {
        Some("refresh_token") => {
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            match st.refresh.get(&rt).cloned() {
                Some((user, false)) => issue(st, &user, false),
                _ => error("invalid_grant", "Token has been expired or revoked."),
            }
        }
        Some("authorization_code") => {
            let code = form.get("code").cloned().unwrap_or_default();
            let Some(c) = st.codes.remove(&code) else {
                return error("invalid_grant", "unknown or used code");
            };
            if form.get("redirect_uri") != Some(&c.redirect_uri) {
                return error(
                    "invalid_grant",
                    "redirect_uri differs from the authorization request",
                );
            }
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let digest = sha2::Sha256::digest(verifier.as_bytes());
            let s256 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            if verifier.len() < 43 || s256 != c.challenge {
                return error("invalid_grant", "PKCE verification failed");
            }
            issue(st, &c.user, true)
        }
        Some("urn:ietf:params:oauth:grant-type:device_code") => {
            let code = form.get("device_code").cloned().unwrap_or_default();
            let Some((user, script)) = st.device.get_mut(&code) else {
                return error("invalid_grant", "unknown device code");
            };
            let user = user.clone();
            match script.pop_front() {
                Some(e) => error(&e, "scripted"),
                None => {
                    st.device.remove(&code);
                    issue(st, &user, true)
                }
            }
        }
        _ => error("unsupported_grant_type", "unknown grant"),
    }
}

/// Reads one request: (path without query, lowercased headers, body).
fn read_request(conn: &mut TcpStream) -> Option<(String, HashMap<String, String>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let target = lines.next()?.split(' ').nth(1)?.to_string();
    let path = target.split('?').next().unwrap_or("").to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((path, headers, body))
}
