//! IMAP commands on an async-imap session, run by hand: sent with `run_command`, their
//! responses read one by one until the tagged completion.
//!
//! async-imap's own helpers are fine for logging in, but a mail filer needs what they
//! drop or get wrong:
//! - an untagged `NO`/`BAD` (Cyrus' `* NO [ALERT] Mailbox is at 94% of STORAGE quota`)
//!   inside a command that then completes `OK` is a warning, not a failed SELECT;
//! - `COPYUID` (RFC 4315) on MOVE and COPY says where each message went;
//! - a connection that closes before the tagged completion is an error — async-imap's
//!   streams end quietly instead, which made every FETCH, SEARCH and LIST need a
//!   confirming `NOOP` round trip;
//! - commands can be pipelined (RFC 3501 §5.5): several sent, then their answers read.
//!
//! Every untagged response passes through [`News`] unless the command's own reader takes
//! it: new mail (`EXISTS`), expunges and the server's warnings are noted there for the
//! folder to act on. `NAMESPACE` (RFC 2342), which async-imap's parser cannot read, is
//! asked for on the raw stream right after login ([`namespace`]).

use std::borrow::Cow;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use async_imap::imap_proto::rfc4315::UidSetMember;
use async_imap::imap_proto::{
    AttributeValue, MailboxDatum, RequestId, Response, ResponseCode, Status,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::connect::ImapSession;

/// The server answered a command with NO or BAD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server said {status}: {text}")]
pub struct ServerSaid {
    /// "NO" or "BAD".
    pub status: &'static str,
    /// The response code (`[TRYCREATE]`) and text, as the server sent them.
    pub text: String,
}

/// How a command ended: the tagged status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// True for OK; NO and BAD are in `refused`.
    pub refused: Option<ServerSaid>,
    /// COPYUID of a COPY (in the tagged OK) or a MOVE (in an untagged OK before it).
    pub copyuid: Option<CopyUid>,
}

impl Done {
    /// The completion as a result: NO or BAD become a [`ServerSaid`] error.
    pub fn ok(self) -> Result<Done> {
        match self.refused {
            Some(said) => Err(said.into()),
            None => Ok(self),
        }
    }
}

/// RFC 4315 COPYUID: the destination's UIDVALIDITY and, pairwise, source and new UIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyUid {
    pub uidvalidity: u32,
    pub pairs: Vec<(u32, u32)>,
}

/// At most this many UIDs are expanded from one COPYUID (a hostile server could send
/// `1:4294967295`); beyond it the code is ignored.
const MAX_COPYUID: usize = 100_000;

fn expand(set: &[UidSetMember]) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for m in set {
        match m {
            UidSetMember::Uid(u) => out.push(*u),
            UidSetMember::UidRange(r) => {
                let (a, b) = (*r.start().min(r.end()), *r.start().max(r.end()));
                if (b - a) as usize >= MAX_COPYUID.saturating_sub(out.len()) {
                    return None;
                }
                out.extend(a..=b);
            }
        }
        if out.len() > MAX_COPYUID {
            return None;
        }
    }
    Some(out)
}

fn copyuid(code: &ResponseCode<'_>) -> Option<CopyUid> {
    let ResponseCode::CopyUid(uidvalidity, src, dst) = code else {
        return None;
    };
    let (src, dst) = (expand(src)?, expand(dst)?);
    (src.len() == dst.len()).then(|| CopyUid {
        uidvalidity: *uidvalidity,
        pairs: src.into_iter().zip(dst).collect(),
    })
}

/// A response code and text as one line, for messages: `[ALERT] Mailbox is at 94%`.
fn describe(code: Option<&ResponseCode<'_>>, info: Option<&str>) -> String {
    let code = match code {
        None => String::new(),
        Some(ResponseCode::Alert) => "[ALERT] ".into(),
        Some(ResponseCode::TryCreate) => "[TRYCREATE] ".into(),
        Some(ResponseCode::ReadOnly) => "[READ-ONLY] ".into(),
        Some(c) => format!("[{c:?}] "),
    };
    let text: String = info
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    format!("{code}{text}").trim().to_string()
}

/// A warning the server sent during a command: an untagged NO or BAD, or an `[ALERT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// "alert", "no" or "bad": the metric's label.
    pub kind: &'static str,
    pub text: String,
}

/// What untagged responses told the folder, beyond the answer to the command.
#[derive(Debug, Default)]
pub struct News {
    /// The latest message count (`EXISTS`).
    pub exists: Option<u32>,
    /// An `EXISTS` or `RECENT` came: there may be new mail.
    pub arrived: bool,
    /// `EXPUNGE`s seen (the count goes down by one each).
    pub expunged: u32,
    /// The server said it is closing the connection (`BYE`).
    pub bye: Option<String>,
    /// Warnings not yet reported.
    pub warnings: Vec<Warning>,
    /// COPYUID seen in an untagged OK (MOVE sends it there, RFC 6851 §4.3).
    pub copyuid: Option<CopyUid>,
}

impl News {
    /// Takes note of an untagged response no command claimed.
    pub fn absorb(&mut self, r: &Response<'_>) {
        match r {
            Response::MailboxData(MailboxDatum::Exists(n)) => {
                self.exists = Some(*n);
                self.arrived = true;
            }
            Response::MailboxData(MailboxDatum::Recent(n)) if *n > 0 => self.arrived = true,
            Response::Expunge(_) => {
                self.expunged += 1;
                if let Some(n) = self.exists.as_mut() {
                    *n = n.saturating_sub(1);
                }
            }
            Response::Data { status, outcome } => {
                let text = describe(outcome.code.as_ref(), outcome.information.as_deref());
                match status {
                    Status::No => self.warnings.push(Warning { kind: "no", text }),
                    Status::Bad => self.warnings.push(Warning { kind: "bad", text }),
                    Status::Bye => self.bye = Some(text),
                    Status::Ok if matches!(outcome.code, Some(ResponseCode::Alert)) => {
                        self.warnings.push(Warning {
                            kind: "alert",
                            text,
                        })
                    }
                    Status::Ok => {
                        if let Some(c) = outcome.code.as_ref().and_then(copyuid) {
                            self.copyuid = Some(c);
                        }
                    }
                    Status::PreAuth => {}
                }
            }
            _ => {}
        }
    }
}

/// A logged-in session and what its untagged responses said.
pub struct Conn {
    session: ImapSession,
    pub news: News,
    /// A command sent whose completion has not been read yet (IDLE after `DONE`): read
    /// before the next command's answer, so leaving IDLE costs no round trip of its own.
    pending: Option<(RequestId, &'static str)>,
    /// Commands sent and not yet completed, and completions that came before the one
    /// being waited for (a server may finish pipelined commands out of order).
    outstanding: Vec<RequestId>,
    early: Vec<(RequestId, Done)>,
}

impl Conn {
    pub fn new(session: ImapSession) -> Conn {
        Conn {
            session,
            news: News::default(),
            pending: None,
            outstanding: Vec::new(),
            early: Vec::new(),
        }
    }

    /// Literals the server announces from now on are cut to `limit` bytes (see `guard`).
    pub fn limit_literals(&mut self, limit: usize) {
        self.session.get_mut().limit_literals(limit);
    }

    /// The session, for async-imap's own helpers (only with nothing pending).
    pub async fn session(&mut self, timeout: Duration) -> Result<&mut ImapSession> {
        self.settle(timeout).await?;
        Ok(&mut self.session)
    }

    /// Reads the completion of a command sent earlier, if any.
    async fn settle(&mut self, timeout: Duration) -> Result<()> {
        if let Some((id, what)) = self.pending.take() {
            let done = within(timeout, what, self.read_until(&id, &mut |_| false)).await?;
            done.ok().with_context(|| what.to_string())?;
        }
        Ok(())
    }

    /// Sends a command without waiting for its answer.
    pub async fn send(&mut self, command: &str) -> Result<RequestId> {
        let id = self
            .session
            .run_command(command)
            .await
            .context("sending a command")?;
        self.outstanding.push(id.clone());
        Ok(id)
    }

    /// Reads responses until `id` completes. Untagged responses go to `take` first; what
    /// it leaves (returns false for) goes to [`News`]. A connection that closes first is
    /// an error, never a short answer.
    async fn read_until(
        &mut self,
        id: &RequestId,
        take: &mut (dyn FnMut(&Response<'_>) -> bool + Send),
    ) -> Result<Done> {
        self.outstanding.retain(|o| o != id);
        if let Some(i) = self.early.iter().position(|(t, _)| t == id) {
            return Ok(self.early.swap_remove(i).1);
        }
        loop {
            let resp = arrived(self.session.read_response().await, &self.news)?;
            match resp.parsed() {
                Response::Done {
                    tag,
                    status,
                    outcome,
                } => {
                    let text = describe(outcome.code.as_ref(), outcome.information.as_deref());
                    let refused = match status {
                        Status::Ok => None,
                        Status::No => Some(ServerSaid { status: "NO", text }),
                        _ => Some(ServerSaid {
                            status: "BAD",
                            text,
                        }),
                    };
                    let copy = outcome.code.as_ref().and_then(copyuid);
                    let done = Done {
                        refused,
                        copyuid: copy.or_else(|| self.news.copyuid.take()),
                    };
                    if tag == id {
                        return Ok(done);
                    }
                    if !self.outstanding.contains(tag) {
                        return Err(anyhow!(
                            "the server answered a command we did not send ({})",
                            tag.0
                        ));
                    }
                    self.outstanding.retain(|o| o != tag);
                    self.early.push((tag.clone(), done));
                }
                other => {
                    if !take(other) {
                        self.news.absorb(other);
                    }
                }
            }
        }
    }

    /// Runs one command to its completion within `timeout`; untagged responses go to
    /// `take` (see [`Conn::read_until`]). NO and BAD come back in [`Done::refused`].
    pub async fn run(
        &mut self,
        what: &str,
        command: &str,
        timeout: Duration,
        take: &mut (dyn FnMut(&Response<'_>) -> bool + Send),
    ) -> Result<Done> {
        let fut = async {
            let id = self.send(command).await?;
            self.settle(timeout).await?;
            self.read_until(&id, take).await
        };
        within(timeout, what, fut).await
    }

    /// [`Conn::run`] for commands whose untagged answers are only news.
    pub async fn simple(&mut self, what: &str, command: &str, timeout: Duration) -> Result<Done> {
        self.run(what, command, timeout, &mut |_| false).await
    }

    /// Runs several commands pipelined (RFC 3501 §5.5): all are sent, then the answers
    /// read in order. Each untagged response goes to `take` with the index of the command
    /// being answered.
    pub async fn pipelined(
        &mut self,
        what: &str,
        commands: &[String],
        timeout: Duration,
        take: &mut (dyn FnMut(usize, &Response<'_>) -> bool + Send),
    ) -> Result<Vec<Done>> {
        let fut = async {
            let mut ids = Vec::with_capacity(commands.len());
            for c in commands {
                ids.push(self.send(c).await?);
            }
            self.settle(timeout).await?;
            let mut out = Vec::with_capacity(ids.len());
            for (i, id) in ids.iter().enumerate() {
                out.push(self.read_until(id, &mut |r| take(i, r)).await?);
            }
            Ok(out)
        };
        within(timeout, what, fut).await
    }

    /// Waits in IDLE (RFC 2177) until the server announces new mail, `max` passes or
    /// `cancel` fires. Leaving IDLE sends `DONE` and does not wait for the answer: it is
    /// read with the next command's.
    pub async fn idle(
        &mut self,
        max: Duration,
        timeout: Duration,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<super::Woke> {
        use super::Woke;
        self.settle(timeout).await?;
        let id = self.send("IDLE").await?;
        // Until the continuation ("+ idling"), the server may still send news or refuse.
        let started = within(timeout, "starting IDLE", async {
            loop {
                let resp = arrived(self.session.read_response().await, &self.news)?;
                match resp.parsed() {
                    Response::Continue(_) => return Ok(()),
                    Response::Done {
                        tag,
                        status,
                        outcome,
                    } if *tag == id => {
                        return Err(anyhow!(
                            "the server refused IDLE ({status:?}: {})",
                            describe(outcome.code.as_ref(), outcome.information.as_deref())
                        ))
                    }
                    other => self.news.absorb(other),
                }
            }
        })
        .await;
        started?;
        let deadline = tokio::time::sleep(max);
        tokio::pin!(deadline);
        let woke = loop {
            if self.news.arrived {
                break Woke::Changed;
            }
            if self.news.bye.is_some() {
                break Woke::Changed;
            }
            tokio::select! {
                r = self.session.read_response() => {
                    let resp = arrived(r, &self.news).context("waiting in IDLE")?;
                    match resp.parsed() {
                        Response::Done { tag, .. } if *tag == id => {
                            return Err(anyhow!("the server ended IDLE on its own"));
                        }
                        other => self.news.absorb(other),
                    }
                }
                _ = &mut deadline => break Woke::Timeout,
                _ = cancel.cancelled() => break Woke::Cancelled,
            }
        };
        self.session
            .run_command_untagged("DONE")
            .await
            .context("leaving IDLE")?;
        self.pending = Some((id, "leaving IDLE"));
        Ok(woke)
    }

    /// Logs out politely (best effort, bounded).
    pub async fn logout(mut self) {
        let t = Duration::from_secs(5);
        let _ = tokio::time::timeout(t, async {
            let _ = self.settle(t).await;
            let _ = self.session.logout().await;
        })
        .await;
    }
}

/// A response read from the server; the connection closed instead is an error (with
/// what the server said when it said goodbye).
fn arrived<T>(read: std::io::Result<Option<T>>, news: &News) -> Result<T> {
    match read {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(anyhow!(
            "the server closed the connection{}",
            news.bye
                .as_deref()
                .map(|b| format!(" (it said: {b})"))
                .unwrap_or_default()
        )),
        Err(e) => Err(anyhow::Error::new(e).context("reading the server's answer")),
    }
}

/// Runs `f` under a timeout: running out is an error (the session is then dropped).
async fn within<T>(
    timeout: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(_) => Err(anyhow!(
            "timed out after {}s while {what}",
            timeout.as_secs()
        )),
    }
}

/// The parts of one FETCH response that the folder reads, copied out of the buffer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchItem {
    pub uid: Option<u32>,
    pub size: Option<u32>,
    /// Unix time of INTERNALDATE.
    pub internal_date: Option<i64>,
    /// `BODY[]`.
    pub body: Option<Vec<u8>>,
    /// `BODY[HEADER]` or `BODY[HEADER.FIELDS (…)]`.
    pub header: Option<Vec<u8>>,
    /// `BODY[TEXT]` (possibly partial).
    pub text: Option<Vec<u8>>,
    /// `BODY[n.m]` and `BODY[n.m.MIME]`: (path, MIME?, bytes).
    pub parts: Vec<(Vec<u32>, bool, Vec<u8>)>,
    /// From BODYSTRUCTURE: the text parts worth reading, and whether the message is a
    /// single text part.
    pub text_parts: Option<(Vec<Vec<u32>>, bool)>,
    /// From BODYSTRUCTURE, for a single text part: its content fields, to stand in for a
    /// header cut before them.
    pub single_content: Option<String>,
}

impl FetchItem {
    /// The FETCH data of a response, if it is one.
    pub fn of(r: &Response<'_>) -> Option<FetchItem> {
        use async_imap::imap_proto::{MessageSection, SectionPath};
        let Response::Fetch(_, attrs) = r else {
            return None;
        };
        let mut item = FetchItem::default();
        let bytes = |d: &Option<Cow<'_, [u8]>>| d.as_deref().unwrap_or_default().to_vec();
        for a in attrs {
            match a {
                AttributeValue::Uid(u) => item.uid = Some(*u),
                AttributeValue::Rfc822Size(s) => item.size = Some(*s),
                AttributeValue::InternalDate(d) => {
                    item.internal_date =
                        chrono::DateTime::parse_from_str(d.trim(), "%d-%b-%Y %H:%M:%S %z")
                            .ok()
                            .map(|t| t.timestamp());
                }
                AttributeValue::BodySection { section, data, .. } => match section {
                    None => item.body = Some(bytes(data)),
                    Some(SectionPath::Full(MessageSection::Header)) => {
                        item.header = Some(bytes(data))
                    }
                    Some(SectionPath::Full(MessageSection::Text)) => item.text = Some(bytes(data)),
                    Some(SectionPath::Full(MessageSection::Mime)) => {}
                    Some(SectionPath::Part(path, sub)) => {
                        let mime = matches!(sub, Some(MessageSection::Mime));
                        if sub.is_none() || mime {
                            item.parts.push((path.clone(), mime, bytes(data)));
                        }
                    }
                },
                AttributeValue::Rfc822(data) => item.body = Some(bytes(data)),
                AttributeValue::Rfc822Header(data) => item.header = Some(bytes(data)),
                AttributeValue::BodyStructure(bs) => {
                    let mut parts = Vec::new();
                    super::fetch::text_parts(bs, &mut Vec::new(), &mut parts);
                    item.text_parts = Some((parts, super::fetch::single_text(bs)));
                    item.single_content = super::fetch::content_fields(bs);
                }
                _ => {}
            }
        }
        Some(item)
    }

    /// A part's bytes (its MIME header with `mime`).
    pub fn part(&self, path: &[u32], mime: bool) -> Option<&[u8]> {
        self.parts
            .iter()
            .find(|(p, m, _)| p == path && *m == mime)
            .map(|(_, _, b)| b.as_slice())
    }
}

/// The personal namespace (RFC 2342): the prefix every own folder's name starts with
/// (`""`, or `"INBOX."` on Cyrus and many hosting servers) and its hierarchy delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub prefix: String,
    pub delimiter: Option<char>,
}

/// Asks for NAMESPACE on the raw stream. async-imap's parser does not know the response
/// and would wedge the session on it, so this runs right after login, before anything
/// else is sent or selected, when nothing of async-imap's is buffered: one command, its
/// answer read a byte at a time up to its own tagged line, nothing more.
pub async fn namespace(session: &mut ImapSession, timeout: Duration) -> Result<Option<Namespace>> {
    const TAG: &str = "mtns1";
    let fut = async {
        let stream = session.get_mut();
        stream
            .write_all(format!("{TAG} NAMESPACE\r\n").as_bytes())
            .await?;
        stream.flush().await?;
        let mut found = None;
        loop {
            let line = read_line(stream).await?;
            if let Some(rest) = strip_prefix_ci(&line, b"* NAMESPACE ") {
                found = parse_namespace(rest);
            } else if let Some(rest) = strip_prefix_ci(&line, format!("{TAG} ").as_bytes()) {
                let ok = strip_prefix_ci(rest, b"OK").is_some();
                return Ok::<_, anyhow::Error>(if ok { found } else { None });
            }
        }
    };
    within(timeout, "asking for the namespace", fut).await
}

fn strip_prefix_ci<'a>(line: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &line[prefix.len()..])
}

/// Longest response line read on the raw stream (NAMESPACE answers are short).
const MAX_RAW_LINE: usize = 64 * 1024;

/// One response line (without CRLF), literals (`{n}` + CRLF + n bytes) included.
async fn read_line(stream: &mut super::connect::Stream) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let b = stream
            .read_u8()
            .await
            .context("the server closed the connection")?;
        line.push(b);
        if line.len() > MAX_RAW_LINE {
            return Err(anyhow!("a response line longer than {MAX_RAW_LINE} bytes"));
        }
        if line.ends_with(b"\r\n") {
            line.truncate(line.len() - 2);
            match literal_len(&line) {
                Some(n) if n <= MAX_RAW_LINE => {
                    line.extend_from_slice(b"\r\n");
                    let mut lit = vec![0u8; n];
                    stream.read_exact(&mut lit).await?;
                    line.extend_from_slice(&lit);
                }
                Some(_) => return Err(anyhow!("a literal longer than {MAX_RAW_LINE} bytes")),
                None => return Ok(line),
            }
        }
    }
}

/// The length of a literal announced at the end of a line (`{12}` or `{12+}`).
fn literal_len(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&body[open + 1..]);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A token of a NAMESPACE response.
#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    Nil,
    Str(Vec<u8>),
}

fn tokens(mut s: &[u8]) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    while let Some((&c, rest)) = s.split_first() {
        match c {
            b' ' => s = rest,
            b'(' => {
                out.push(Tok::Open);
                s = rest;
            }
            b')' => {
                out.push(Tok::Close);
                s = rest;
            }
            b'"' => {
                let mut v = Vec::new();
                let mut i = 0;
                loop {
                    match rest.get(i)? {
                        b'\\' => {
                            v.push(*rest.get(i + 1)?);
                            i += 2;
                        }
                        b'"' => break,
                        &b => {
                            v.push(b);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
                s = &rest[i + 1..];
            }
            b'{' => {
                let close = rest.iter().position(|&b| b == b'}')?;
                let digits = rest[..close].strip_suffix(b"+").unwrap_or(&rest[..close]);
                let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
                let body = rest.get(close + 1..)?.strip_prefix(b"\r\n")?;
                out.push(Tok::Str(body.get(..n)?.to_vec()));
                s = &body[n..];
            }
            _ => {
                let end = s
                    .iter()
                    .position(|&b| matches!(b, b' ' | b'(' | b')'))
                    .unwrap_or(s.len());
                if s[..end].eq_ignore_ascii_case(b"NIL") {
                    out.push(Tok::Nil);
                } else {
                    // An atom (a namespace extension's flag): kept as a string.
                    out.push(Tok::Str(s[..end].to_vec()));
                }
                s = &s[end..];
            }
        }
    }
    Some(out)
}

/// The personal namespace of a NAMESPACE response's data (after `* NAMESPACE `): the
/// first descriptor of the first group. `NIL` there means the server has no personal
/// namespace we can use.
pub fn parse_namespace(data: &[u8]) -> Option<Namespace> {
    let toks = tokens(data)?;
    // (( "prefix" "delim" [extensions] ) ...) ...
    match toks.as_slice() {
        [Tok::Open, Tok::Open, Tok::Str(prefix), delim, ..] => {
            let delimiter = match delim {
                Tok::Str(d) => std::str::from_utf8(d).ok()?.chars().next(),
                Tok::Nil => None,
                _ => return None,
            };
            Some(Namespace {
                prefix: String::from_utf8(prefix.clone()).ok()?,
                delimiter,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Response<'_> {
        let (rest, r) = Response::parse(line.as_bytes()).expect("parses");
        assert!(rest.is_empty(), "left over: {rest:?}");
        r
    }

    #[test]
    fn namespaces_of_real_servers() {
        type Case<'a> = (&'a str, Option<(&'a str, Option<char>)>);
        let cases: &[Case<'_>] = &[
            // Dovecot, default layout.
            (r#"(("" "/")) NIL NIL"#, Some(("", Some('/')))),
            // Cyrus (Debian stock), Courier, cPanel/Plesk Dovecot.
            (
                r#"(("INBOX." ".")) (("user." ".")) (("" "."))"#,
                Some(("INBOX.", Some('.'))),
            ),
            // Several personal namespaces: the first one is the default.
            (r##"(("" "/")("#mh/" "/")) NIL NIL"##, Some(("", Some('/')))),
            // A flat server.
            (r#"(("" NIL)) NIL NIL"#, Some(("", None))),
            // Extensions after the delimiter (RFC 2342 §5), and a literal prefix.
            (
                "((\"INBOX/\" \"/\" \"X-PARAM\" (\"FLAG1\"))) NIL NIL",
                Some(("INBOX/", Some('/'))),
            ),
            (
                "(({6}\r\nINBOX. \".\")) NIL NIL",
                Some(("INBOX.", Some('.'))),
            ),
            // No personal namespace, or garbage.
            ("NIL NIL NIL", None),
            ("((", None),
            (r#"(("unterminated"#, None),
        ];
        for (data, want) in cases {
            let got = parse_namespace(data.as_bytes());
            let want = want.map(|(p, d)| Namespace {
                prefix: p.to_string(),
                delimiter: d,
            });
            assert_eq!(got, want, "{data:?}");
        }
    }

    #[test]
    fn literal_lengths_at_line_end() {
        assert_eq!(literal_len(b"* NAMESPACE (({6}"), Some(6));
        assert_eq!(literal_len(b"x {12+}"), Some(12));
        assert_eq!(literal_len(b"x {}"), None);
        assert_eq!(literal_len(b"x {1a}"), None);
        assert_eq!(literal_len(b"x 12}"), None);
    }

    /// Regression (issue 17): Cyrus warns near its quota with an untagged NO [ALERT]
    /// before the SELECT's OK; it was taken for a failed SELECT.
    #[test]
    fn untagged_no_and_alerts_are_warnings_not_failures() {
        let mut news = News::default();
        news.absorb(&parse(
            "* NO [ALERT] Mailbox is at 94% of STORAGE quota\r\n",
        ));
        news.absorb(&parse("* OK [ALERT] System shutdown in 10 minutes\r\n"));
        news.absorb(&parse("* BAD Something odd\r\n"));
        news.absorb(&parse("* OK Still here\r\n"));
        assert_eq!(
            news.warnings,
            vec![
                Warning {
                    kind: "no",
                    text: "[ALERT] Mailbox is at 94% of STORAGE quota".into()
                },
                Warning {
                    kind: "alert",
                    text: "[ALERT] System shutdown in 10 minutes".into()
                },
                Warning {
                    kind: "bad",
                    text: "Something odd".into()
                },
            ]
        );
        assert!(!news.arrived);
    }

    #[test]
    fn exists_expunge_and_copyuid_are_noted() {
        let mut news = News::default();
        news.absorb(&parse("* 5 EXISTS\r\n"));
        assert!(news.arrived);
        assert_eq!(news.exists, Some(5));
        news.absorb(&parse("* 2 EXPUNGE\r\n"));
        assert_eq!((news.exists, news.expunged), (Some(4), 1));
        news.absorb(&parse("* OK [COPYUID 77 3:4,9 10:12] Moved\r\n"));
        assert_eq!(
            news.copyuid,
            Some(CopyUid {
                uidvalidity: 77,
                pairs: vec![(3, 10), (4, 11), (9, 12)]
            })
        );
        // Mismatched or absurd sets are ignored, not trusted.
        let mut news = News::default();
        news.absorb(&parse("* OK [COPYUID 77 3:4 10] Moved\r\n"));
        news.absorb(&parse("* OK [COPYUID 77 1:4294967295 1:4294967295] x\r\n"));
        assert_eq!(news.copyuid, None);
    }

    #[test]
    fn fetch_items_copy_out_what_the_folder_reads() {
        let r = parse(
            "* 3 FETCH (UID 42 RFC822.SIZE 1234 INTERNALDATE \" 2-Mar-2026 10:00:00 -0500\" BODY[HEADER] {10}\r\nSubject: x BODY[1.MIME] {4}\r\nabcd BODY[1] {2}\r\nhi)\r\n",
        );
        let item = FetchItem::of(&r).expect("a fetch");
        assert_eq!(item.uid, Some(42));
        assert_eq!(item.size, Some(1234));
        assert_eq!(item.internal_date, Some(1_772_463_600));
        assert_eq!(item.header.as_deref(), Some(&b"Subject: x"[..]));
        assert_eq!(item.part(&[1], true), Some(&b"abcd"[..]));
        assert_eq!(item.part(&[1], false), Some(&b"hi"[..]));
        assert!(FetchItem::of(&parse("* 5 EXISTS\r\n")).is_none());
    }
}
