//! A tiny synchronous IMAP client over a plain `TcpStream`, for tests that must act
//! like *another* mail client (never the daemon's own code). Lines are kept as
//! lossily decoded text; server literals (`{N}`) are read in full and inlined.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a connect, a greeting or one command may take before we give up.
pub const IMAP_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection to 127.0.0.1:PORT with a transcript of everything said on it.
pub struct ImapClient {
    stream: TcpStream,
    pending: Vec<u8>,
    next_tag: u32,
    transcript: String,
    timeout: Duration,
}

impl ImapClient {
    /// Connects and reads the greeting; panics if that fails.
    pub fn connect(port: u16) -> ImapClient {
        ImapClient::try_connect(port, IMAP_TIMEOUT)
            .unwrap_or_else(|e| panic!("IMAP connect to 127.0.0.1:{port}: {e}"))
    }

    /// Connects and reads the greeting (`* OK ...`) within `timeout`.
    pub fn try_connect(port: u16, timeout: Duration) -> Result<ImapClient, String> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let mut client = ImapClient {
            stream,
            pending: Vec::new(),
            next_tag: 1,
            transcript: String::new(),
            timeout: IMAP_TIMEOUT,
        };
        match client.read_line(timeout) {
            Some(line) if line.starts_with("* OK") || line.starts_with("* PREAUTH") => Ok(client),
            Some(line) => Err(format!("unexpected greeting: {line}")),
            None => Err("no greeting".into()),
        }
    }

    /// Sets how long `command`, `login` and `append` wait for their answer (default 30 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Everything said so far: client lines prefixed `C: `, server lines `S: `.
    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    /// `LOGIN user password`; returns the tagged response line (OK, NO or BAD).
    pub fn login(&mut self, user: &str, password: &str) -> String {
        let response = self.command(&format!("LOGIN {} {}", quote(user), quote(password)));
        response.lines().last().unwrap_or_default().to_string()
    }

    /// Like `login`, but None (no panic) on timeout or hang-up: for polling loops.
    pub fn try_login(&mut self, user: &str, password: &str) -> Option<String> {
        let tag = self.send_command(&format!("LOGIN {} {}", quote(user), quote(password)));
        let prefix = format!("{tag} ");
        let response = self
            .try_wait_for(self.timeout, |l| l.starts_with(&prefix))
            .ok()?;
        Some(response.lines().last().unwrap_or_default().to_string())
    }

    /// Sends one tagged command and returns every response line up to and including
    /// the tagged one, joined with `\n`. Panics (with the transcript) on timeout.
    pub fn command(&mut self, command: &str) -> String {
        let tag = self.send_command(command);
        self.read_until_tagged(&tag)
    }

    /// Sends `TAG command` without waiting; returns the tag.
    pub fn send_command(&mut self, command: &str) -> String {
        let tag = format!("t{}", self.next_tag);
        self.next_tag += 1;
        self.send_line(&format!("{tag} {command}"));
        tag
    }

    /// Sends one raw line (CRLF appended), e.g. `DONE` to end IDLE.
    pub fn send_line(&mut self, line: &str) {
        self.transcript.push_str(&format!("C: {line}\n"));
        self.write(format!("{line}\r\n").as_bytes());
    }

    /// Reads lines until the tagged response for `tag`; returns them joined with `\n`.
    pub fn read_until_tagged(&mut self, tag: &str) -> String {
        let prefix = format!("{tag} ");
        self.wait_for(self.timeout, |l| l.starts_with(&prefix))
    }

    /// Reads lines until one satisfies `done`; returns all of them joined with `\n`.
    /// Panics with the transcript if `timeout` passes first or the server hangs up.
    pub fn wait_for(&mut self, timeout: Duration, done: impl FnMut(&str) -> bool) -> String {
        self.try_wait_for(timeout, done).unwrap_or_else(|seen| {
            panic!(
                "IMAP: expected line not seen within {timeout:?} (got {seen:?}); transcript:\n{}",
                self.transcript
            )
        })
    }

    /// Like `wait_for`, but on timeout or hang-up returns Err with the lines seen.
    pub fn try_wait_for(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(line) = self.read_line(left) else {
                return Err(lines.join("\n"));
            };
            let last = done(&line);
            lines.push(line);
            if last {
                return Ok(lines.join("\n"));
            }
        }
    }

    /// `APPEND "folder" {N}` with a synchronizing literal; returns the tagged response.
    /// `folder` is UTF-8 and is sent in modified UTF-7. Note that Dovecot stores the
    /// message with LF line endings (it converts CRLF when saving).
    pub fn append(&mut self, folder: &str, raw: &[u8]) -> String {
        let tag = self.send_command(&format!(
            "APPEND {} {{{}}}",
            quote(&mutf7(folder)),
            raw.len()
        ));
        let prefix = format!("{tag} ");
        let reply = self.wait_for(self.timeout, |l| {
            l.starts_with('+') || l.starts_with(&prefix)
        });
        if !reply.lines().last().unwrap_or_default().starts_with('+') {
            return reply; // refused before the literal was sent
        }
        self.transcript
            .push_str(&format!("C: <literal of {} bytes>\n", raw.len()));
        self.write(raw);
        self.write(b"\r\n");
        self.read_until_tagged(&tag)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    }

    /// Reads one response line (with literals inlined) within `timeout`; None on
    /// timeout or when the server closed the connection.
    pub fn read_line(&mut self, timeout: Duration) -> Option<String> {
        let line = self.read_line_bytes(timeout)?;
        let text = String::from_utf8_lossy(&line).into_owned();
        self.transcript.push_str(&format!("S: {text}\n"));
        Some(text)
    }

    /// Like `read_line`, as the exact bytes (not added to the transcript).
    fn read_line_bytes(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut line = self.raw_line(deadline)?;
        // A line ending in {N} announces N literal bytes, followed by more of the line.
        while let Some(n) = literal_len(&line) {
            line.extend_from_slice(b"\r\n");
            while self.pending.len() < n {
                self.fill(deadline)?;
            }
            line.extend(self.pending.drain(..n));
            line.extend(self.raw_line(deadline)?);
        }
        Some(line)
    }

    /// `UID FETCH 1:* (UID FLAGS BODY.PEEK[])` in the selected folder: every message with
    /// its exact bytes, in UID order (flags without `\Recent`).
    pub fn fetch_all(&mut self) -> Vec<super::mailbox::StoredMessage> {
        let tag = self.send_command("UID FETCH 1:* (UID FLAGS BODY.PEEK[])");
        let done = format!("{tag} ");
        let mut out = Vec::new();
        loop {
            let timeout = self.timeout;
            let line = self
                .read_line_bytes(timeout)
                .unwrap_or_else(|| panic!("FETCH: no answer; transcript:\n{}", self.transcript));
            if line.starts_with(done.as_bytes()) {
                let text = String::from_utf8_lossy(&line).into_owned();
                assert!(text.contains(" OK"), "FETCH failed: {text}");
                break;
            }
            if let Some(m) = parse_fetch_line(&line) {
                out.push(m);
            }
        }
        out.sort_by_key(|m| m.uid);
        out
    }

    fn raw_line(&mut self, deadline: Instant) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = self.pending[..i].to_vec();
                self.pending.drain(..i + 2);
                return Some(line);
            }
            self.fill(deadline)?;
        }
    }

    fn fill(&mut self, deadline: Instant) -> Option<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        self.stream.set_read_timeout(Some(left)).ok()?;
        let mut buf = [0u8; 64 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                Some(())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Some(()),
            Err(_) => None, // WouldBlock/TimedOut on timeout, or a reset
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes) {
            panic!("IMAP write failed: {e}; transcript:\n{}", self.transcript);
        }
    }
}

/// The N of a trailing `{N}` (or `{N+}`), if the line ends with one.
fn literal_len(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = std::str::from_utf8(&body[open + 1..]).ok()?;
    digits.trim_end_matches('+').parse().ok()
}

/// One `* n FETCH (UID u FLAGS (...) BODY[] {len}CRLF<bytes>)` line, literal inlined.
fn parse_fetch_line(line: &[u8]) -> Option<super::mailbox::StoredMessage> {
    let start = line.windows(7).position(|w| w == b"BODY[] ")?;
    let head = String::from_utf8_lossy(&line[..start]).into_owned();
    if !head.starts_with("* ") || !head.contains(" FETCH (") {
        return None;
    }
    let after = &line[start + 7..];
    let close = after.iter().position(|&b| b == b'}')?;
    let n: usize = std::str::from_utf8(after.get(1..close)?)
        .ok()?
        .parse()
        .ok()?;
    let raw = after.get(close + 3..close + 3 + n)?.to_vec();
    // UID and FLAGS may come before or after the literal.
    let head = format!(
        "{head} {}",
        String::from_utf8_lossy(after.get(close + 3 + n..).unwrap_or_default())
    );
    let uid = head
        .split("UID ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let flags: Vec<String> = head
        .split("FLAGS (")
        .nth(1)
        .and_then(|f| f.split(')').next())
        .unwrap_or("")
        .split_whitespace()
        .filter(|f| *f != "\\Recent")
        .map(String::from)
        .collect();
    Some(super::mailbox::StoredMessage { uid, flags, raw })
}

/// Decodes an IMAP modified UTF-7 mailbox name (RFC 3501 5.1.3); None if malformed.
pub fn mutf7_decode(name: &str) -> Option<String> {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    let mut out = String::new();
    let mut rest = name;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp + 1..];
        let end = tail.find('-')?;
        let enc = &tail[..end];
        if enc.is_empty() {
            out.push('&');
        } else {
            let mut bits = 0u32;
            let mut nbits = 0;
            let mut bytes = Vec::new();
            for b in enc.bytes() {
                let v = B64.iter().position(|&c| c == b)? as u32;
                bits = (bits << 6) | v;
                nbits += 6;
                if nbits >= 8 {
                    nbits -= 8;
                    bytes.push((bits >> nbits) as u8);
                    bits &= (1 << nbits) - 1;
                }
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// An IMAP quoted string (`\` and `"` escaped).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Encodes a UTF-8 mailbox name as IMAP modified UTF-7 (RFC 3501 5.1.3).
pub fn mutf7(name: &str) -> String {
    fn flush(out: &mut String, units: &mut Vec<u16>) {
        if units.is_empty() {
            return;
        }
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
        let bytes: Vec<u8> = units.drain(..).flat_map(u16::to_be_bytes).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | ((b as u32) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out.push('-');
    }
    let mut out = String::new();
    let mut units = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut units);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            units.extend(c.encode_utf16(&mut [0; 2]).iter());
        }
    }
    flush(&mut out, &mut units);
    out
}

/// LOGIN + `APPEND` of `raw` to `folder` as another mail client would; returns the
/// new message's UID (from `[APPENDUID ...]`). Panics with the transcript on failure.
pub fn imap_append(port: u16, user: &str, password: &str, folder: &str, raw: &[u8]) -> u32 {
    let mut c = ImapClient::connect(port);
    let login = c.login(user, password);
    assert!(
        login.contains(" OK"),
        "LOGIN failed; transcript:\n{}",
        c.transcript()
    );
    let reply = c.append(folder, raw);
    let uid = reply
        .split_once("[APPENDUID ")
        .and_then(|(_, rest)| rest.split(']').next()?.split(' ').nth(1)?.parse().ok());
    let uid = uid.unwrap_or_else(|| panic!("APPEND failed; transcript:\n{}", c.transcript()));
    c.command("LOGOUT");
    uid
}

/// LOGIN, then each command in turn, then LOGOUT; returns the transcript (`C: `/`S: `
/// lines). A failed LOGIN does not panic: it is in the transcript for the caller to see.
pub fn imap_command(port: u16, user: &str, password: &str, commands: &[&str]) -> String {
    let mut c = ImapClient::connect(port);
    c.login(user, password);
    for command in commands {
        c.command(command);
    }
    c.command("LOGOUT");
    c.transcript().to_string()
}
