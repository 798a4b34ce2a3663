//! A TCP relay of the test harness's own between the daemon and Dovecot that misbehaves
//! on purpose: it cuts connections right after chosen IMAP commands (mid-FETCH,
//! mid-MOVE, mid-IDLE), cuts in the middle of a server response, delays traffic, stalls
//! (accepts, then never answers), or answers a chosen command itself as a hostile server
//! would. Deterministic for a given seed.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How the relay behaves now.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// Relay faithfully.
    Pass,
    /// Misbehave at random.
    Chaos {
        /// Probability (0–1) to cut right after forwarding one of the `commands`.
        cut_after_command: f64,
        /// Commands that may be cut (matched case-insensitively in client lines).
        commands: Vec<&'static str>,
        /// Probability (0–1) per server chunk to forward only part of it and cut.
        cut_mid_response: f64,
        /// Largest random delay per chunk, in milliseconds.
        max_delay_ms: u64,
    },
    /// Accept connections but never forward anything (a hung server).
    Stall,
}

/// Counters of what the relay did.
#[derive(Default, Debug)]
pub struct Stats {
    pub connections: AtomicU64,
    pub cuts_after_command: AtomicU64,
    pub cuts_mid_response: AtomicU64,
}

impl Stats {
    /// Every cut so far.
    pub fn cuts(&self) -> u64 {
        self.cuts_after_command.load(Ordering::Relaxed)
            + self.cuts_mid_response.load(Ordering::Relaxed)
    }
}

/// The relay.
pub struct Proxy {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    rng: Arc<Mutex<u64>>,
    swallow: Arc<Swallow>,
    forge: Arc<Mutex<Option<Forged>>>,
}

/// An answer the relay sends itself, as a hostile server: the next command containing
/// `command` is not forwarded; the client gets `answer`, and `hold` later the connection
/// is cut.
#[derive(Clone)]
struct Forged {
    command: String,
    answer: Vec<u8>,
    hold: Duration,
}

/// Answers to withhold: the next `remaining` commands containing `command` are
/// forwarded, the server's answer is awaited (its tagged completion) and then, instead of
/// relaying it, the connection is cut. The command has taken effect on the server; the
/// client never learns it — a crash right after the server did the work.
#[derive(Default)]
struct Swallow {
    state: Mutex<SwallowState>,
}

#[derive(Default)]
struct SwallowState {
    command: String,
    remaining: u64,
    /// Per connection: the tag whose completion is awaited (set by the upstream thread).
    armed: std::collections::HashMap<u64, String>,
}

fn next(rng: &Mutex<u64>) -> u64 {
    let mut s = match rng.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn chance(rng: &Mutex<u64>, p: f64) -> bool {
    (next(rng) % 1_000_000) as f64 / 1_000_000.0 < p
}

impl Proxy {
    /// Starts relaying 127.0.0.1:<new port> → 127.0.0.1:`target`.
    pub fn start(target: u16, seed: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let proxy = Proxy {
            port,
            mode: Arc::new(Mutex::new(Mode::Pass)),
            stats: Arc::new(Stats::default()),
            stop: Arc::new(AtomicBool::new(false)),
            rng: Arc::new(Mutex::new(seed | 1)),
            swallow: Arc::new(Swallow::default()),
            forge: Arc::new(Mutex::new(None)),
        };
        let (mode, stats, stop, rng, swallow, forge) = (
            proxy.mode.clone(),
            proxy.stats.clone(),
            proxy.stop.clone(),
            proxy.rng.clone(),
            proxy.swallow.clone(),
            proxy.forge.clone(),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let id = stats.connections.fetch_add(1, Ordering::Relaxed);
                        let _ = client.set_nonblocking(false);
                        let shared = Shared {
                            mode: mode.clone(),
                            stats: stats.clone(),
                            stop: stop.clone(),
                            rng: rng.clone(),
                            swallow: swallow.clone(),
                            forge: forge.clone(),
                            id,
                        };
                        thread::spawn(move || relay(client, target, shared));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        proxy
    }

    /// The port to point the daemon at.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Changes the behaviour (affects traffic from now on, also on open connections).
    pub fn set_mode(&self, m: Mode) {
        if let Ok(mut g) = self.mode.lock() {
            *g = m;
        }
    }

    /// What the relay did.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Withholds the server's answer to the next `times` commands containing `command`
    /// (e.g. "UID MOVE") and cuts the connection instead (see [`Swallow`]).
    pub fn swallow_answers(&self, command: &str, times: u64) {
        if let Ok(mut s) = self.swallow.state.lock() {
            s.command = command.to_ascii_uppercase();
            s.remaining = times;
        }
    }

    /// Answers the next command containing `command` itself, as a hostile server: the
    /// command never reaches the server, the client gets `answer`, and `hold` later the
    /// connection is cut. Once.
    pub fn forge_answer(&self, command: &str, answer: &[u8], hold: Duration) {
        if let Ok(mut f) = self.forge.lock() {
            *f = Some(Forged {
                command: command.to_ascii_uppercase(),
                answer: answer.to_vec(),
                hold,
            });
        }
    }
}

/// What a relayed connection shares with the proxy.
struct Shared {
    mode: Arc<Mutex<Mode>>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    rng: Arc<Mutex<u64>>,
    swallow: Arc<Swallow>,
    forge: Arc<Mutex<Option<Forged>>>,
    /// This connection's number.
    id: u64,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn mode_of(m: &Mutex<Mode>) -> Mode {
    match m.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

fn cut(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

fn relay(client: TcpStream, target: u16, shared: Shared) {
    let Shared {
        mode,
        stats,
        stop,
        rng,
        swallow,
        forge,
        id,
    } = shared;
    if mode_of(&mode) == Mode::Stall {
        // Hold the connection open and silent until the test ends or the client gives up.
        let mut client = client;
        let _ = client.set_read_timeout(Some(Duration::from_millis(100)));
        let mut buf = [0u8; 1024];
        while !stop.load(Ordering::Relaxed) {
            match client.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
        return;
    };
    let (c2, s2) = match (client.try_clone(), server.try_clone()) {
        (Ok(c), Ok(s)) => (c, s),
        _ => return,
    };
    // client → server: watch the command lines.
    let (m, st, r, sw) = (mode.clone(), stats.clone(), rng.clone(), swallow.clone());
    let (mut from_client, mut to_server) = (client, server);
    let (cut_c, cut_s) = match (from_client.try_clone(), to_server.try_clone()) {
        (Ok(c), Ok(s)) => (c, s),
        _ => return,
    };
    let upstream = thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let mut partial: Vec<u8> = Vec::new();
        loop {
            let n = match from_client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mode = mode_of(&m);
            if mode == Mode::Stall {
                continue;
            }
            // Whole command lines only: a client may write a tag and its command apart.
            partial.extend_from_slice(&buf[..n]);
            let complete = partial
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|i| partial.drain(..=i).collect::<Vec<u8>>());
            let text = complete.map(|lines| String::from_utf8_lossy(&lines).to_ascii_uppercase());
            let forged = text.as_deref().and_then(|text| {
                let mut f = forge.lock().ok()?;
                let hit = f
                    .as_ref()
                    .is_some_and(|f| text.contains(f.command.as_str()));
                if hit {
                    f.take()
                } else {
                    None
                }
            });
            if let Some(f) = forged {
                let _ = (&cut_c).write_all(&f.answer);
                thread::sleep(f.hold);
                cut(&cut_c, &cut_s);
                break;
            }
            if let (Some(text), Ok(mut s)) = (text, sw.state.lock()) {
                if s.remaining > 0 && !s.command.is_empty() {
                    let hit = text.lines().find(|l| l.contains(s.command.as_str()));
                    if let Some(tag) = hit.and_then(|l| l.split_whitespace().next()) {
                        s.remaining -= 1;
                        s.armed.insert(id, tag.to_string());
                        if std::env::var_os("PROXY_DEBUG").is_some() {
                            eprintln!("proxy {id}: withholding the answer to {text:?}");
                        }
                    }
                }
            }
            if to_server.write_all(&buf[..n]).is_err() {
                break;
            }
            if let Mode::Chaos {
                cut_after_command,
                commands,
                ..
            } = &mode
            {
                let line = String::from_utf8_lossy(&buf[..n]).to_ascii_uppercase();
                if commands
                    .iter()
                    .any(|c| line.contains(&c.to_ascii_uppercase()))
                    && chance(&r, *cut_after_command)
                {
                    // Let the server start answering, then cut: the command may or may not
                    // have taken effect, which is exactly what recovery must handle.
                    thread::sleep(Duration::from_millis(next(&r) % 15));
                    st.cuts_after_command.fetch_add(1, Ordering::Relaxed);
                    if std::env::var_os("PROXY_DEBUG").is_some() {
                        eprintln!(
                            "proxy: cut after {:?}",
                            String::from_utf8_lossy(&buf[..n.min(60)])
                        );
                    }
                    cut(&cut_c, &cut_s);
                    break;
                }
            }
        }
        cut(&cut_c, &cut_s);
    });
    // server → client: delays and mid-response cuts.
    let (mut from_server, mut to_client) = (s2, c2);
    let mut buf = [0u8; 16 * 1024];
    let mut withheld: Vec<u8> = Vec::new();
    loop {
        let n = match from_server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let armed = swallow
            .state
            .lock()
            .ok()
            .and_then(|s| s.armed.get(&id).cloned());
        if let Some(tag) = armed {
            // Hold everything back until the command's own completion, then cut.
            withheld.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&withheld).to_ascii_uppercase();
            if std::env::var_os("PROXY_DEBUG").is_some() {
                eprintln!("proxy {id}: withheld {text:?} (waiting for {tag})");
            }
            let done = text.lines().any(|l| l.starts_with(&format!("{tag} ")));
            if done {
                if let Ok(mut s) = swallow.state.lock() {
                    s.armed.remove(&id);
                }
                stats.cuts_after_command.fetch_add(1, Ordering::Relaxed);
                cut(&from_server, &to_client);
                break;
            }
            continue;
        }
        let mode = mode_of(&mode);
        if mode == Mode::Stall {
            continue;
        }
        if let Mode::Chaos {
            cut_mid_response,
            max_delay_ms,
            ..
        } = mode
        {
            if max_delay_ms > 0 {
                thread::sleep(Duration::from_millis(next(&rng) % (max_delay_ms + 1)));
            }
            if n > 1 && chance(&rng, cut_mid_response) {
                let part = 1 + (next(&rng) as usize % (n - 1));
                let _ = to_client.write_all(&buf[..part]);
                stats.cuts_mid_response.fetch_add(1, Ordering::Relaxed);
                cut(&from_server, &to_client);
                break;
            }
        }
        if to_client.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    cut(&from_server, &to_client);
    let _ = upstream.join();
}
