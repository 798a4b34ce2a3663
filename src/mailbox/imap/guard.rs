//! What the server can make the response reader allocate.
//!
//! async-imap's reader, told by the parser that a literal of N bytes follows (`{N}` and
//! CRLF), grows its buffer to hold all N bytes at once — zero-filled, so resident at once —
//! before one of them has arrived, for any N up to 512 MiB (a larger one ends the
//! connection). An honest server sends no more than was asked for (a partial fetch,
//! `<0.N>`, at most N bytes; see `fetch`); a hostile or broken one could announce hundreds
//! of megabytes in any response and make the daemon hold them.
//!
//! [`LiteralGuard`] sits between the socket and the reader and cuts every literal longer
//! than its limit down to the limit: the announcement is rewritten (`{400000000}` becomes
//! `{1048576}`), the first bytes are passed on and the rest dropped as they stream by. The
//! reader then never holds more than the limit for one literal, and what it gets is what a
//! partial fetch would have given (fetches never need more than the limit: it is at least
//! the parse limit of the scan cap, see [`crate::mail::parse_limit`]).
//!
//! The guard finds literals exactly where the reader's parser does, because it runs that
//! parser (imap-proto) on its own copy of the response so far whenever a line ends in
//! what looks like an announcement: a `{5}` closing a server's text line, or inside another
//! literal, is not one. Its copy leaves out the contents of literals longer than
//! [`INLINE`] (rewritten to `{0}`, which parses alike), so it stays small.
//!
//! Not bounded here: a response's bytes outside literals (quoted strings, lines). Those the
//! server must actually send, and the reader gives up at 512 MiB of them. A response the
//! guard cannot parse within [`MAX_COPY`] of such bytes ends its watch on the connection
//! (logged): the reader is then as it was without the guard.

use std::cell::Cell;

use async_imap::imap_proto::{ParseResult, Response};

/// The parser's error type (nom's), named through its result type: nom is not a
/// dependency of ours.
type ParseError<'a> = <ParseResult<'a> as Failure>::Error;

/// The error type of a `Result`.
trait Failure {
    type Error;
}

impl<T, E> Failure for Result<T, E> {
    type Error = E;
}

/// Longest literal passed on whole when nothing else was said: anything but a message
/// fetch needs bytes to kilobytes (folder names, server texts), and a fetch with the
/// default scan cap needs its parse limit, 1 MiB.
pub const DEFAULT_LIMIT: usize = 1024 * 1024;

/// Literals up to this long stay in the guard's copy of the response; the contents of
/// longer ones are left out (they cannot be a keyword the parser looks for).
pub const INLINE: usize = 1024;

/// Most bytes of one response, outside long literals, that the guard keeps to parse it.
pub const MAX_COPY: usize = 64 * 1024 * 1024;

/// Longest literal announcement the parser reads: `{` and up to 10 digits (a `u32`), `}`,
/// CRLF.
const MAX_ANNOUNCEMENT: usize = 14;

/// Cuts the literals of a server's responses down to a limit (see the module docs).
#[derive(Debug)]
pub struct LiteralGuard {
    limit: usize,
    /// The current response (and complete ones not yet dropped), as the parser needs it.
    copy: Vec<u8>,
    /// The length of `copy` when it was last found incomplete.
    parsed: usize,
    /// A possible literal announcement: the bytes from a `{` on, held back until its line
    /// ends so that it can be rewritten.
    held: Vec<u8>,
    /// Inside a long literal: bytes still to pass on, then bytes to drop.
    pass: usize,
    discard: usize,
    /// Bytes ready for the reader, from `out_at` on.
    out: Vec<u8>,
    out_at: usize,
    /// The guard gave up on this connection (a response it could not parse).
    off: bool,
}

impl Default for LiteralGuard {
    fn default() -> Self {
        LiteralGuard::new(DEFAULT_LIMIT)
    }
}

impl LiteralGuard {
    /// A guard that passes literals of up to `limit` bytes (at least [`INLINE`]) whole.
    pub fn new(limit: usize) -> LiteralGuard {
        LiteralGuard {
            limit: limit.max(INLINE),
            copy: Vec::new(),
            parsed: 0,
            held: Vec::new(),
            pass: 0,
            discard: 0,
            out: Vec::new(),
            out_at: 0,
            off: false,
        }
    }

    /// Changes the limit (at least [`INLINE`]) for literals announced from now on.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(INLINE);
    }

    /// Bytes waiting for the reader.
    pub fn pending(&self) -> usize {
        self.out.len() - self.out_at
    }

    /// Moves waiting bytes into `to`, as many as fit; returns how many.
    pub fn take(&mut self, to: &mut [u8]) -> usize {
        let waiting = &self.out[self.out_at..];
        let n = waiting.len().min(to.len());
        to[..n].copy_from_slice(&waiting[..n]);
        self.out_at += n;
        if self.out_at == self.out.len() {
            self.out.clear();
            self.out_at = 0;
        }
        n
    }

    /// The stream ended: whatever was held back goes to the reader as it is.
    pub fn finish(&mut self) {
        self.release();
    }

    /// Lets the held-back bytes go to the reader as they are.
    fn release(&mut self) {
        self.out.append(&mut self.held);
    }

    /// Takes bytes read from the server; what the reader may have is then [`pending`].
    ///
    /// [`pending`]: LiteralGuard::pending
    pub fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            if self.off {
                self.out.extend_from_slice(input);
                return;
            }
            if self.pass > 0 {
                let n = self.pass.min(input.len());
                self.out.extend_from_slice(&input[..n]);
                self.pass -= n;
                input = &input[n..];
                continue;
            }
            if self.discard > 0 {
                let n = self.discard.min(input.len());
                self.discard -= n;
                input = &input[n..];
                continue;
            }
            if !self.held.is_empty() {
                let b = input[0];
                if !continues_announcement(&self.held, b) {
                    // Not an announcement: let it go, and look at `b` afresh.
                    self.release();
                    continue;
                }
                self.held.push(b);
                self.copy.push(b);
                input = &input[1..];
                if b == b'\n' {
                    self.line_ended();
                }
                continue;
            }
            match memchr::memchr2(b'{', b'\n', input) {
                None => {
                    self.out.extend_from_slice(input);
                    self.copy.extend_from_slice(input);
                    input = &[];
                }
                Some(i) => {
                    self.out.extend_from_slice(&input[..i]);
                    self.copy.extend_from_slice(&input[..=i]);
                    if input[i] == b'{' {
                        self.held.push(b'{');
                    } else {
                        self.out.push(b'\n');
                        self.line_ended();
                    }
                    input = &input[i + 1..];
                }
            }
            if self.copy.len() > MAX_COPY && self.parse().is_none() && self.copy.len() > MAX_COPY {
                tracing::warn!(
                    "the server sent a response of more than {} MiB outside its literals; no longer cutting this connection's literals to {} bytes",
                    MAX_COPY >> 20,
                    self.limit
                );
                self.off = true;
                self.copy = Vec::new();
                self.release();
            }
        }
    }

    /// A line ended (its LF is the last byte of `copy`); `held` may be an announcement.
    fn line_ended(&mut self) {
        let announced = announcement(&self.held);
        match announced {
            Some(n) if n > INLINE => match self.parse() {
                Some(wanted) if wanted == n => self.literal(n),
                _ => self.release(),
            },
            _ => {
                // Not one, or a short literal: its bytes stay in `copy` and are parsed
                // with the rest. Drop complete responses from the copy now and then.
                self.release();
                if self.copy.len() >= 2 * self.parsed.max(4096) {
                    self.parse();
                }
            }
        }
    }

    /// A literal of `n` bytes begins (its announcement is `held`, and ends `copy`).
    fn literal(&mut self, n: usize) {
        // The copy keeps an empty literal in its place: it parses alike.
        let at = self.copy.len() - self.held.len();
        self.copy.truncate(at);
        self.copy.extend_from_slice(b"{0}\r\n");
        self.parsed = self.copy.len();
        self.held.clear();
        if n > self.limit {
            tracing::warn!(
                "the server announced a literal of {n} bytes; reading only its first {} (a hostile or broken server, or a message built to be read that way)",
                self.limit
            );
            self.out
                .extend_from_slice(format!("{{{}}}\r\n", self.limit).as_bytes());
            self.pass = self.limit;
            self.discard = n - self.limit;
        } else {
            self.out
                .extend_from_slice(format!("{{{n}}}\r\n").as_bytes());
            self.pass = n;
        }
    }

    /// Parses the copy: drops the complete responses at its start, and says how many more
    /// bytes the parser wants for the rest when that is a literal's (`Needed::Size`).
    fn parse(&mut self) -> Option<usize> {
        loop {
            if self.copy.is_empty() {
                self.parsed = 0;
                return None;
            }
            match Response::parse(&self.copy) {
                Ok((rest, _)) => {
                    let done = self.copy.len() - rest.len();
                    self.copy.drain(..done);
                }
                Err(ParseError::Incomplete(needed)) => {
                    self.parsed = self.copy.len();
                    // `Needed::Size(n)`, read through its one accessor.
                    let size = Cell::new(None);
                    let _ = needed.map(|n| {
                        size.set(Some(n.get()));
                        n.get()
                    });
                    return size.get();
                }
                Err(_) => {
                    // The reader cannot parse it either (or it is read some other way, as
                    // NAMESPACE is): go on after its first line.
                    match memchr::memchr(b'\n', &self.copy) {
                        Some(i) => drop(self.copy.drain(..=i)),
                        None => self.copy.clear(),
                    }
                }
            }
        }
    }
}

/// Could `held` (a `{` and what followed it on its line) followed by `b` still be a
/// literal announcement?
fn continues_announcement(held: &[u8], b: u8) -> bool {
    let Some(&last) = held.last() else {
        return false;
    };
    match last {
        b'}' => b == b'\r',
        b'\r' => b == b'\n',
        _ => {
            (b.is_ascii_digit() && held.len() < MAX_ANNOUNCEMENT - 3)
                || (b == b'}' && held.len() > 1)
        }
    }
}

/// The length a complete announcement (`{N}` CRLF) gives.
fn announcement(held: &[u8]) -> Option<usize> {
    let digits = held.strip_prefix(b"{")?.strip_suffix(b"}\r\n")?;
    std::str::from_utf8(digits)
        .ok()?
        .parse::<u32>()
        .ok()?
        .try_into()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of the sizes `chunks` cycles through; what the reader gets.
    fn through(guard: &mut LiteralGuard, input: &[u8], chunks: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = input;
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
            guard.feed(&rest[..n]);
            rest = &rest[n..];
            let mut buf = [0u8; 37];
            loop {
                let got = guard.take(&mut buf);
                if got == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..got]);
            }
        }
        guard.finish();
        let mut buf = vec![0u8; guard.pending()];
        let got = guard.take(&mut buf);
        out.extend_from_slice(&buf[..got]);
        out
    }

    /// A deterministic xorshift.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Literal contents that look like protocol: line ends, announcements, parentheses.
    fn content(rng: &mut Rng, len: usize) -> Vec<u8> {
        const PIECES: [&[u8]; 8] = [
            b"\r\n",
            b"{99999999}\r\n",
            b"{5}\r\n",
            b") ",
            b"* 1 FETCH (BODY[] {400000000}\r\n",
            b"a OK done\r\n",
            b"hello ",
            b"\xff\x00",
        ];
        let mut c = Vec::with_capacity(len);
        while c.len() < len {
            c.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        }
        c.truncate(len);
        c
    }

    /// A server's answers (what it sends, what the reader should get through a guard of
    /// `limit`): every literal longer than the limit cut to it, nothing else changed.
    fn transcript(rng: &mut Rng, limit: usize, responses: usize) -> (Vec<u8>, Vec<u8>) {
        let sizes = [
            0,
            1,
            7,
            INLINE,
            INLINE + 1,
            limit - 1,
            limit,
            limit + 1,
            3 * limit + 5,
        ];
        let (mut sent, mut want) = (Vec::new(), Vec::new());
        let literal = |rng: &mut Rng, sent: &mut Vec<u8>, want: &mut Vec<u8>| {
            let n = sizes[rng.below(sizes.len())];
            let c = content(rng, n);
            sent.extend_from_slice(format!("{{{n}}}\r\n").as_bytes());
            sent.extend_from_slice(&c);
            let kept = n.min(limit);
            want.extend_from_slice(format!("{{{kept}}}\r\n").as_bytes());
            want.extend_from_slice(&c[..kept]);
        };
        for i in 0..responses {
            let both = |s: &mut Vec<u8>, w: &mut Vec<u8>, b: &[u8]| {
                s.extend_from_slice(b);
                w.extend_from_slice(b);
            };
            match rng.below(10) {
                0 => {
                    both(
                        &mut sent,
                        &mut want,
                        format!("* {i} FETCH (UID {i} BODY[] ").as_bytes(),
                    );
                    literal(rng, &mut sent, &mut want);
                    both(&mut sent, &mut want, b")\r\n");
                }
                1 => {
                    both(
                        &mut sent,
                        &mut want,
                        format!(
                            "* {i} FETCH (UID {i} BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" "
                        )
                        .as_bytes(),
                    );
                    literal(rng, &mut sent, &mut want);
                    both(
                        &mut sent,
                        &mut want,
                        b") NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL) BODY[HEADER]<0> ",
                    );
                    literal(rng, &mut sent, &mut want);
                    both(&mut sent, &mut want, b" BODY[1.MIME]<0> ");
                    literal(rng, &mut sent, &mut want);
                    both(&mut sent, &mut want, b")\r\n");
                }
                // Server texts ending in what looks like an announcement are texts.
                2 => both(
                    &mut sent,
                    &mut want,
                    format!("* OK [ALERT] over quota {{{}}}\r\n", 100 * limit).as_bytes(),
                ),
                3 => both(
                    &mut sent,
                    &mut want,
                    format!("a{i} NO no such thing {{{}}}\r\n", 2 * limit).as_bytes(),
                ),
                4 => both(&mut sent, &mut want, b"+ idling\r\n"),
                5 => both(&mut sent, &mut want, format!("* {i} EXISTS\r\n").as_bytes()),
                // Not something the parser knows (read on the raw stream after login).
                6 => both(
                    &mut sent,
                    &mut want,
                    b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n",
                ),
                7 => both(
                    &mut sent,
                    &mut want,
                    format!("* {i} FETCH (UID {i} BODY[] \"quoted {{77777}}\")\r\n").as_bytes(),
                ),
                // The one status response whose code holds strings, literals too.
                8 => {
                    both(&mut sent, &mut want, b"* NO [BADCHARSET (");
                    literal(rng, &mut sent, &mut want);
                    both(&mut sent, &mut want, b")] unknown charset\r\n");
                }
                _ => both(&mut sent, &mut want, format!("a{i} OK done\r\n").as_bytes()),
            }
        }
        (sent, want)
    }

    /// Issue 19: whatever the server sends and however it arrives, the reader gets it
    /// unchanged except for literals longer than the limit, cut to the limit — and only
    /// real literals (the parser's), never a `{N}` in a server's text or inside a literal.
    #[test]
    fn only_literals_over_the_limit_are_cut() {
        let limit = 3000;
        for seed in 1..=1000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let (sent, want) = transcript(&mut rng, limit, 12);
            let chunks: Vec<usize> = (0..8).map(|_| 1 + rng.below(700)).collect();
            let got = through(&mut LiteralGuard::new(limit), &sent, &chunks);
            assert!(
                got == want,
                "seed {seed}, chunks {chunks:?}:\nsent {:?}\ngot  {:?}\nwant {:?}",
                String::from_utf8_lossy(&sent),
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
            // With a limit nothing reaches, nothing changes.
            let got = through(&mut LiteralGuard::new(usize::MAX), &sent, &chunks);
            assert!(got == sent, "seed {seed}: changed without a cut");
        }
    }

    /// Regression (issue 19): a hostile server's 400 MB announcement reaches the reader as
    /// the limit, and what follows the literal is read as usual.
    #[test]
    fn a_huge_announcement_is_cut_to_the_limit() {
        let mut sent = b"* 1 FETCH (UID 7 BODY[] {400000000}\r\n".to_vec();
        let body = vec![b'x'; 5000];
        sent.extend_from_slice(&body);
        let mut guard = LiteralGuard::new(2000);
        let got = through(&mut guard, &sent, &[64, 1, 4096]);
        let mut want = b"* 1 FETCH (UID 7 BODY[] {2000}\r\n".to_vec();
        want.extend_from_slice(&body[..2000]);
        assert_eq!(got, want);
        // The guard kept none of it, and the cut literal parses as a whole (short) one.
        assert!(guard.copy.len() < 64, "{}", guard.copy.len());
        let mut whole = got;
        whole.extend_from_slice(b")\r\n");
        let (rest, r) = Response::parse(&whole).expect("parses");
        assert!(rest.is_empty());
        assert!(matches!(r, Response::Fetch(1, _)), "{r:?}");
    }

    /// The limit can change between commands (a fetch raises it to its parse limit).
    #[test]
    fn the_limit_applies_from_the_next_announcement() {
        let mut g = LiteralGuard::new(2000);
        let first = through(&mut g, b"* 1 FETCH (BODY[] {3000}\r\n", &[100]);
        assert_eq!(first, b"* 1 FETCH (BODY[] {2000}\r\n");
        g.set_limit(5000);
        let mut rest = vec![b'y'; 3000];
        rest.extend_from_slice(b")\r\n* 2 FETCH (BODY[] {3000}\r\n");
        let got = through(&mut g, &rest, &[512]);
        let mut want = vec![b'y'; 2000];
        want.extend_from_slice(b")\r\n* 2 FETCH (BODY[] {3000}\r\n");
        assert_eq!(got, want);
    }
}
