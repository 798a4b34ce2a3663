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

use lettre::transport::smtp::extension::{ClientId, Extension, ServerInfo};
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::transport::{Failure, COMMAND_TIMEOUT};

/// Longest reply line accepted, CRLF included (lettre's limit too; RFC 5321 asks for 512).
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

/// Where the reply at the start of `buf` ends: after its first line whose code is not
/// followed by `-` (RFC 5321 §4.2.1). `None` while no such line is complete.
fn reply_end(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut start = 0;
    while let Some(len) = buf
        .get(start..)
        .and_then(|rest| memchr::memchr(b'\n', rest))
    {
        if len + 1 > MAX_LINE {
            return Err(format!("a reply line over {MAX_LINE} bytes"));
        }
        let end = start + len + 1;
        if buf.get(start + 3) != Some(&b'-') {
            return Ok(Some(end));
        }
        start = end;
    }
    if buf.len() - start > MAX_LINE {
        return Err(format!("a reply line over {MAX_LINE} bytes"));
    }
    Ok(None)
}

/// The reply fit for one log line: control characters dropped, at most MAX_QUOTE
/// characters (it comes from the network before anything is authenticated).
fn quoted(reply: &Response) -> String {
    let text = format!(
        "{} {}",
        reply.code(),
        reply.message().collect::<Vec<_>>().join(" ")
    );
    text.trim_end()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_QUOTE)
        .collect()
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

    /// Reads the reply to `step` (parsed by lettre, as before); refuses if anything
    /// follows it.
    async fn reply(&mut self, step: Step) -> Result<Response, Failure> {
        loop {
            match reply_end(&self.buf) {
                Ok(Some(end)) => {
                    let extra = self.buf.len() - end;
                    if extra > 0 {
                        return Err(self.fail(format_args!(
                            "(or someone in between) sent data before TLS started; refusing ({extra} bytes after {step})"
                        )));
                    }
                    let reply = std::str::from_utf8(&self.buf)
                        .map_err(|e| e.to_string())
                        .and_then(|text| text.parse::<Response>().map_err(|e| e.to_string()));
                    self.buf.clear();
                    return reply.map_err(|e| {
                        self.fail(format_args!(
                            "sent something other than an SMTP reply as {step}, before TLS started ({e})"
                        ))
                    });
                }
                Err(what) => {
                    return Err(self.fail(format_args!("sent {what} as {step}, before TLS started")))
                }
                Ok(None) if self.buf.len() > MAX_REPLY => {
                    return Err(self.fail(format_args!(
                        "sent over {MAX_REPLY} bytes as {step}, before TLS started"
                    )))
                }
                Ok(None) => {}
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
                        "did not send {step} within {}s",
                        COMMAND_TIMEOUT.as_secs()
                    )))
                }
            }
        }
    }

    /// Sends `command` (a CRLF-terminated line) and reads its reply, which must be
    /// positive (2xx or 3xx, as lettre counts it).
    async fn command(&mut self, command: &str, step: Step) -> Result<Response, Failure> {
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
    fn expect_positive(&self, reply: Response, step: Step) -> Result<Response, Failure> {
        if reply.is_positive() {
            return Ok(reply);
        }
        Err(self.fail(format_args!(
            "(or someone in between) refused {}: {} (not final: before TLS nothing is authenticated)",
            step.refused(),
            quoted(&reply)
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
    let offers_starttls = ServerInfo::from_response(&ehlo)
        .is_ok_and(|info| info.supports_feature(Extension::StartTls));
    if !offers_starttls {
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

    #[test]
    fn a_reply_ends_after_its_last_line() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"220 Ready to start TLS\r\n", Some(24)),
            (b"250\r\n", Some(5)),
            (
                b"250-mail.test\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
                Some(44),
            ),
            (b"", None),
            (b"220 Ready", None),
            (b"250-mail.test\r\n250-SIZE", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                reply_end(input),
                Ok(*expected),
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
        let end = reply_end(buf).ok().flatten().expect("a whole reply");
        assert_eq!(
            buf.get(end..),
            Some(&b"554 5.7.1 injected\r\n"[..]),
            "the injected line must be left over"
        );
    }

    #[test]
    fn overlong_reply_lines_are_refused_whole_or_partial() {
        let long = format!("250 {}\r\n", "x".repeat(MAX_LINE));
        let unterminated = format!("250-{}", "x".repeat(MAX_LINE));
        for input in [long, unterminated] {
            let r = reply_end(input.as_bytes());
            assert!(
                r.as_ref().is_err_and(|e| e.contains("over 1000 bytes")),
                "{r:?}"
            );
        }
        let longest = format!("250 {}\r\n", "x".repeat(MAX_LINE - 6));
        assert_eq!(reply_end(longest.as_bytes()), Ok(Some(longest.len())));
    }

    #[test]
    fn quoted_replies_lose_control_characters_and_length() {
        let text = format!("554-5.7.1 no\x1b[31m\r\n554 {}\r\n", "y".repeat(500));
        let reply: Response = text.parse().expect("a reply");
        let q = quoted(&reply);
        assert!(q.starts_with("554 5.7.1 no[31m y"), "{q}");
        assert_eq!(q.chars().count(), MAX_QUOTE);
    }
}
