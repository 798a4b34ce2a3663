//! The clear-text start of an SMTP connection with STARTTLS — greeting, EHLO, STARTTLS —
//! spoken here rather than by lettre (issue 19).
//!
//! lettre reads replies through a buffered reader that it keeps across the TLS upgrade,
//! so bytes a man in the middle appended to the server's `220` answer to STARTTLS were
//! read as the first answer over TLS: a forged `554` made a queued alert fail for good.
//! Here every clear-text reply must arrive alone: a byte beyond the reply just read ends
//! the attempt, so when [`negotiate`] hands the socket back nothing is buffered, and
//! whatever arrives later goes to rustls, which refuses it as not TLS. lettre only ever
//! sees the stream once TLS has started.
//!
//! Nothing before TLS is authenticated, so nothing said before TLS can fail a message
//! for good: every failure here is temporary (the message is retried).

use std::fmt;

use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::transport::{Failure, COMMAND_TIMEOUT};

/// Longest reply line accepted (lettre's limit too; RFC 5321 asks for 512).
const MAX_LINE: usize = 1000;
/// Longest reply accepted, all lines (an EHLO reply is a dozen short lines).
const MAX_REPLY: usize = 64 * 1024;
/// Longest piece of a clear-text reply quoted in an error (it is unauthenticated text).
const MAX_QUOTE: usize = 200;

/// The clear-text step a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Greeting,
    Ehlo,
    Starttls,
}

impl Step {
    /// What the server refuses when it answers this step negatively.
    fn refused(self) -> &'static str {
        match self {
            Step::Greeting => "the connection",
            Step::Ehlo => "EHLO",
            Step::Starttls => "STARTTLS",
        }
    }
}

impl fmt::Display for Step {
    /// The reply this step waits for.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Greeting => "its greeting",
            Step::Ehlo => "its answer to EHLO",
            Step::Starttls => "its answer to STARTTLS",
        })
    }
}

/// One SMTP reply: its code and the text of each line.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// Whether an EHLO reply lists the STARTTLS extension.
    fn offers_starttls(&self) -> bool {
        self.lines.iter().skip(1).any(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
        })
    }

    /// The reply fit for one log line: control characters dropped, at most MAX_QUOTE
    /// characters (it comes from the network before anything is authenticated).
    fn quoted(&self) -> String {
        let text = format!("{} {}", self.code, self.lines.join(" "));
        text.trim_end()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_QUOTE)
            .collect()
    }
}

/// What the bytes read so far hold.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A whole reply, and how many bytes it took.
    Reply(Reply, usize),
    /// Not a whole reply yet.
    Incomplete,
    /// Not an SMTP reply.
    Malformed(String),
}

/// Parses the reply at the start of `buf` (RFC 5321 §4.2: `NNN-text` lines, then one
/// `NNN text` or `NNN` line, the same code on each).
fn parse_reply(buf: &[u8]) -> Parsed {
    let mut code = None;
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(len) = buf
        .get(start..)
        .and_then(|rest| memchr::memchr(b'\n', rest))
    {
        let end = start + len + 1;
        let line = buf.get(start..start + len).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE {
            return Parsed::Malformed(format!("a reply line over {MAX_LINE} bytes"));
        }
        let (digits, rest) = line.split_at(line.len().min(3));
        let this: Option<u16> = std::str::from_utf8(digits)
            .ok()
            .filter(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse().ok());
        let Some(this) = this else {
            return Parsed::Malformed("a line that does not start with a reply code".into());
        };
        if code.is_some_and(|c| c != this) {
            return Parsed::Malformed("a reply whose lines have different codes".into());
        }
        code = Some(this);
        let (last, text) = match rest.split_first() {
            None => (true, &[][..]),
            Some((b' ', text)) => (true, text),
            Some((b'-', text)) => (false, text),
            Some(_) => return Parsed::Malformed("a reply line without ' ' or '-'".into()),
        };
        lines.push(String::from_utf8_lossy(text).into_owned());
        if last {
            return Parsed::Reply(Reply { code: this, lines }, end);
        }
        start = end;
    }
    if buf.len() - start > MAX_LINE {
        return Parsed::Malformed(format!("a reply line over {MAX_LINE} bytes"));
    }
    Parsed::Incomplete
}

/// The socket before TLS, with what has been read from it and not yet parsed.
struct Clear<'a> {
    tcp: TcpStream,
    buf: Vec<u8>,
    /// `host:port`, for messages.
    server: &'a str,
}

impl Clear<'_> {
    fn fail(&self, why: impl fmt::Display) -> Failure {
        Failure::temporary(format!("the SMTP server {} {why}", self.server))
    }

    /// Reads the reply to `step`; refuses if anything follows it.
    async fn reply(&mut self, step: Step) -> Result<Reply, Failure> {
        loop {
            match parse_reply(&self.buf) {
                Parsed::Reply(reply, used) => {
                    let extra = self.buf.len() - used;
                    if extra > 0 {
                        return Err(self.fail(format_args!(
                            "(or someone in between) sent data before TLS started; refusing ({extra} bytes after {step})"
                        )));
                    }
                    self.buf.clear();
                    return Ok(reply);
                }
                Parsed::Malformed(what) => {
                    return Err(self.fail(format_args!("sent {what} as {step}, before TLS started")))
                }
                Parsed::Incomplete if self.buf.len() > MAX_REPLY => {
                    return Err(self.fail(format_args!(
                        "sent over {MAX_REPLY} bytes as {step}, before TLS started"
                    )))
                }
                Parsed::Incomplete => {}
            }
            let read = tokio::time::timeout(COMMAND_TIMEOUT, self.tcp.read_buf(&mut self.buf));
            match read.await {
                Ok(Ok(0)) => {
                    return Err(self.fail(format_args!(
                        "closed the connection instead of sending {step}"
                    )))
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(self.fail(format_args!("connection lost waiting for {step}: {e}")))
                }
                Err(_) => {
                    return Err(self.fail(format_args!(
                        "sent no {step} within {}s",
                        COMMAND_TIMEOUT.as_secs()
                    )))
                }
            }
        }
    }

    /// Sends `command` (a CRLF-terminated line) and reads its reply, which must be 2xx.
    async fn command(&mut self, command: &str, step: Step) -> Result<Reply, Failure> {
        let write = tokio::time::timeout(COMMAND_TIMEOUT, self.tcp.write_all(command.as_bytes()));
        match write.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(self.fail(format_args!(
                    "connection lost sending {}: {e}",
                    step.refused()
                )))
            }
            Err(_) => {
                return Err(self.fail(format_args!(
                    "did not take {} within {}s",
                    step.refused(),
                    COMMAND_TIMEOUT.as_secs()
                )))
            }
        }
        let reply = self.reply(step).await?;
        self.expect_positive(reply, step)
    }

    /// A negative reply before TLS is unauthenticated: temporary, whatever its code.
    fn expect_positive(&self, reply: Reply, step: Step) -> Result<Reply, Failure> {
        if reply.positive() {
            return Ok(reply);
        }
        Err(self.fail(format_args!(
            "(or someone in between) refused {}: {} (not final: before TLS nothing is authenticated)",
            step.refused(),
            reply.quoted()
        )))
    }
}

/// Greeting, EHLO and STARTTLS over `tcp`; returns the socket, with nothing read beyond
/// the server's `220` to STARTTLS, for the TLS handshake. `server` is `host:port`.
pub(super) async fn negotiate(
    tcp: TcpStream,
    hello: &ClientId,
    server: &str,
) -> Result<TcpStream, Failure> {
    let mut clear = Clear {
        tcp,
        buf: Vec::with_capacity(1024),
        server,
    };
    let greeting = clear.reply(Step::Greeting).await?;
    clear.expect_positive(greeting, Step::Greeting)?;
    let ehlo = clear
        .command(&format!("EHLO {hello}\r\n"), Step::Ehlo)
        .await?;
    if !ehlo.offers_starttls() {
        return Err(clear.fail(
            "does not offer STARTTLS (or someone in between removed it); not sending without encryption",
        ));
    }
    clear.command("STARTTLS\r\n", Step::Starttls).await?;
    Ok(clear.tcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply {
            code,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn parses_single_and_multi_line_replies_and_says_where_they_end() {
        let cases: &[(&[u8], Parsed)] = &[
            (
                b"220 Ready to start TLS\r\n",
                Parsed::Reply(reply(220, &["Ready to start TLS"]), 24),
            ),
            (b"250\r\n", Parsed::Reply(reply(250, &[""]), 5)),
            (
                b"250-mail.test\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
                Parsed::Reply(reply(250, &["mail.test", "SIZE 1000", "STARTTLS"]), 44),
            ),
            (
                b"220 bare LF\n",
                Parsed::Reply(reply(220, &["bare LF"]), 12),
            ),
            (b"", Parsed::Incomplete),
            (b"220 Ready", Parsed::Incomplete),
            (b"250-mail.test\r\n250-SIZE", Parsed::Incomplete),
        ];
        for (input, expected) in cases {
            assert_eq!(
                &parse_reply(input),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// Regression (issue 19): the bytes a man in the middle appends after `220` are not
    /// part of the reply; `reply` refuses because the reply ends before the buffer does.
    #[test]
    fn regression_injected_reply_after_220_is_left_over_not_swallowed() {
        let buf = b"220 Ready to start TLS\r\n554 5.7.1 injected\r\n";
        let Parsed::Reply(r, used) = parse_reply(buf) else {
            panic!("not parsed");
        };
        assert_eq!(r.code, 220);
        assert_eq!(buf.len() - used, "554 5.7.1 injected\r\n".len());
    }

    #[test]
    fn malformed_replies_are_named() {
        let long = format!("250 {}\r\n", "x".repeat(MAX_LINE));
        let unterminated = format!("250-{}", "x".repeat(MAX_LINE + 1));
        let cases: &[(&[u8], &str)] = &[
            (b"hello\r\n", "does not start with a reply code"),
            (b"25 x\r\n", "does not start with a reply code"),
            (b"250-a\r\n220 b\r\n", "different codes"),
            (b"250+a\r\n", "without ' ' or '-'"),
            (long.as_bytes(), "over 1000 bytes"),
            (unterminated.as_bytes(), "over 1000 bytes"),
        ];
        for (input, expected) in cases {
            match parse_reply(input) {
                Parsed::Malformed(why) => assert!(why.contains(expected), "{why}"),
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
            }
        }
    }

    #[test]
    fn starttls_is_found_only_among_the_ehlo_extensions() {
        assert!(reply(250, &["mail.test", "PIPELINING", "starttls"]).offers_starttls());
        assert!(!reply(250, &["STARTTLS", "PIPELINING"]).offers_starttls());
        assert!(!reply(250, &["mail.test", "X-NOSTARTTLS"]).offers_starttls());
    }

    #[test]
    fn quoted_replies_lose_control_characters_and_length() {
        let r = reply(554, &["5.7.1 no\x1b[31m", &"y".repeat(500)]);
        let q = r.quoted();
        assert!(q.starts_with("554 5.7.1 no[31m y"), "{q}");
        assert_eq!(q.chars().count(), MAX_QUOTE);
    }
}
