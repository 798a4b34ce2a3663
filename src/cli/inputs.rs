//! Finding messages to triage offline: `.eml` files, directories of them, Maildirs
//! (`cur/` and `new/`) and mbox files, split into individual messages.
//!
//! Memory stays bounded whatever the input: files are read one message at a time and
//! only as far as the parser looks (`mail::parse_limit`); mbox files — many gigabytes,
//! possibly with gigabyte-long lines — are streamed, never held whole.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// One message read from disk, with a label saying where it came from.
pub struct Input {
    /// The file, with "#N" for the Nth message of an mbox.
    pub label: String,
    /// The message's first bytes: at most the read limit (the rest is never held).
    pub bytes: Vec<u8>,
    /// The message's full size in bytes.
    pub size: usize,
}

/// One message of an mbox: its first bytes (at most the limit) and its full size.
#[derive(Debug, PartialEq, Eq)]
pub struct MboxMessage {
    /// The message's first bytes, at most the reader's limit.
    pub bytes: Vec<u8>,
    /// The message's full size in bytes.
    pub size: usize,
}

/// Does this file look like an mbox (first line "From ")?
fn is_mbox(bytes: &[u8]) -> bool {
    bytes.starts_with(b"From ")
}

/// Splits an mbox held in memory into messages (see [`Mbox`] for the rules).
#[cfg(test)]
pub fn split_mbox(bytes: &[u8]) -> Vec<Vec<u8>> {
    Mbox::new(bytes, usize::MAX)
        .filter_map(|m| m.ok().map(|m| m.bytes))
        .collect()
}

/// How a line ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// End of input without a line break.
    None,
    Lf,
    CrLf,
}

/// A line as the mbox reader sees it: its leading '>' run is counted, not stored.
struct Line {
    /// Leading '>' characters.
    gt: usize,
    /// Length in bytes, line break included.
    len: usize,
    ending: Ending,
}

/// Reads one line: counts its leading '>' run, keeps at most `keep` bytes of the rest in
/// `rest`, and consumes the whole line however long it is. `None` at end of input.
fn read_line(r: &mut impl BufRead, keep: usize, rest: &mut Vec<u8>) -> io::Result<Option<Line>> {
    rest.clear();
    let mut gt = 0;
    let mut len = 0;
    let mut in_run = true;
    let mut prev = 0u8;
    loop {
        let buf = match r.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((len > 0).then_some(Line {
                gt,
                len,
                ending: Ending::None,
            }));
        }
        let mut i = 0;
        if in_run {
            i = buf.iter().take_while(|&&b| b == b'>').count();
            gt += i;
            in_run = i == buf.len();
        }
        let newline = buf
            .get(i..)
            .and_then(|b| b.iter().position(|&c| c == b'\n'));
        let end = newline.map_or(buf.len(), |p| i + p + 1);
        let take = (end - i).min(keep.saturating_sub(rest.len()));
        rest.extend_from_slice(buf.get(i..i + take).unwrap_or_default());
        let ending = newline.map(|_| {
            let before = if end >= 2 { buf[end - 2] } else { prev };
            if before == b'\r' {
                Ending::CrLf
            } else {
                Ending::Lf
            }
        });
        prev = buf[end - 1];
        len += end;
        r.consume(end);
        if let Some(ending) = ending {
            return Ok(Some(Line { gt, len, ending }));
        }
    }
}

/// A message being assembled: at most `limit` bytes kept, every byte counted.
struct Assembly {
    bytes: Vec<u8>,
    size: usize,
    /// A blank line not yet added: it may be the mbox's separator padding.
    pending_blank: Option<&'static [u8]>,
    /// The last line added ended with CRLF.
    last_crlf: bool,
}

impl Assembly {
    fn new() -> Assembly {
        Assembly {
            bytes: Vec::new(),
            size: 0,
            pending_blank: None,
            last_crlf: false,
        }
    }

    fn keep(&mut self, limit: usize, chunk: &[u8]) {
        let room = limit.saturating_sub(self.bytes.len());
        self.bytes
            .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
    }

    fn flush_blank(&mut self, limit: usize) {
        if let Some(blank) = self.pending_blank.take() {
            self.keep(limit, blank);
            self.size += blank.len();
            self.last_crlf = blank == b"\r\n";
        }
    }

    /// Adds a line: `gt` '>' characters (one fewer for a quoted "From ") then `rest`.
    fn push(&mut self, limit: usize, line: &Line, rest: &[u8]) {
        self.flush_blank(limit);
        let unquote = line.gt > 0 && rest.starts_with(b"From ");
        let gt = line.gt - usize::from(unquote);
        let room = limit.saturating_sub(self.bytes.len());
        self.bytes.extend(std::iter::repeat_n(b'>', gt.min(room)));
        self.keep(limit, rest);
        self.size += line.len - usize::from(unquote);
        self.last_crlf = line.ending == Ending::CrLf;
    }

    /// The message, when a "From " line follows: the blank line before it belongs to the
    /// mbox, not the message.
    fn before_separator(mut self, limit: usize) -> MboxMessage {
        let padding = match self.pending_blank {
            Some(b"\n") => self.size > 0,
            Some(b"\r\n") => self.last_crlf,
            _ => false,
        };
        if padding {
            self.pending_blank = None;
        }
        self.at_end(limit)
    }

    fn at_end(mut self, limit: usize) -> MboxMessage {
        self.flush_blank(limit);
        MboxMessage {
            bytes: self.bytes,
            size: self.size,
        }
    }
}

/// Reads an mbox one message at a time, holding at most `limit` bytes of each (an mbox
/// may be many gigabytes; so may one of its lines). mboxo/mboxrd: a "From " line after a
/// blank line starts a message, and the blank line before it is dropped; ">From " quoting
/// is undone (one '>' removed).
pub struct Mbox<R> {
    reader: R,
    limit: usize,
    rest: Vec<u8>,
    current: Option<Assembly>,
    prev_blank: bool,
    done: bool,
}

impl<R: BufRead> Mbox<R> {
    /// An mbox reader over `reader`, keeping at most `limit` bytes of each message.
    pub fn new(reader: R, limit: usize) -> Mbox<R> {
        Mbox {
            reader,
            limit,
            rest: Vec::new(),
            current: None,
            prev_blank: true,
            done: false,
        }
    }
}

impl<R: BufRead> Iterator for Mbox<R> {
    type Item = io::Result<MboxMessage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let kept = self.current.as_ref().map_or(0, |m| m.bytes.len());
            // Enough of every line to recognise "From " even when the message is full.
            let keep = self.limit.saturating_sub(kept).max(8);
            let line = match read_line(&mut self.reader, keep, &mut self.rest) {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(None) => {
                    self.done = true;
                    return self.current.take().map(|m| Ok(m.at_end(self.limit)));
                }
                Ok(Some(line)) => line,
            };
            if self.prev_blank && line.gt == 0 && self.rest.starts_with(b"From ") {
                self.prev_blank = false;
                match self.current.replace(Assembly::new()) {
                    Some(m) => return Some(Ok(m.before_separator(self.limit))),
                    None => continue,
                }
            }
            let content_len = line.len
                - match line.ending {
                    Ending::None => 0,
                    Ending::Lf => 1,
                    Ending::CrLf => 2,
                };
            let lone_cr = line.ending == Ending::None && self.rest == b"\r";
            let blank = line.gt == 0 && (content_len == 0 || lone_cr);
            let m = self.current.get_or_insert_with(Assembly::new);
            if blank {
                m.flush_blank(self.limit);
                m.pending_blank = Some(match line.ending {
                    Ending::CrLf => b"\r\n",
                    Ending::Lf => b"\n",
                    Ending::None => b"\r",
                });
            } else {
                m.push(self.limit, &line, &self.rest);
            }
            self.prev_blank = blank;
        }
    }
}

fn wanted(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name.starts_with('.') {
        return false;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if ext.eq_ignore_ascii_case("eml") || ext.eq_ignore_ascii_case("mbox") {
        return true;
    }
    // Maildir message files live in cur/ or new/, named freely.
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    parent == "cur" || parent == "new"
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(_) => continue,
        };
        if meta.is_dir() {
            walk(&p, out)?;
        } else if meta.is_file() && wanted(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// The files under `paths`, in a stable order. Files given explicitly are always
/// included; directories contribute .eml, .mbox and Maildir files.
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot open {}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut files)?;
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

/// Reads the first `limit` bytes of a file, and its size (without reading the rest of a
/// regular file).
fn read_prefix(path: &Path, limit: usize) -> io::Result<(File, Vec<u8>, usize)> {
    let mut file = File::open(path)?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(u64::try_from(limit).unwrap_or(u64::MAX))
        .read_to_end(&mut bytes)?;
    let meta = file.metadata()?;
    let size = if bytes.len() < limit {
        bytes.len()
    } else if meta.is_file() {
        usize::try_from(meta.len())
            .unwrap_or(usize::MAX)
            .max(bytes.len())
    } else {
        bytes.len() + usize::try_from(io::copy(&mut file, &mut io::sink())?).unwrap_or(0)
    };
    Ok((file, bytes, size))
}

/// Reads one message file (no mbox splitting): at most `limit` bytes of it, and its size.
pub fn read_message(path: &Path, limit: usize) -> Result<Input> {
    let (_, bytes, size) =
        read_prefix(path, limit).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Input {
        label: path.display().to_string(),
        bytes,
        size,
    })
}

/// Every message under `paths`, read one at a time and at most `limit` bytes of each:
/// memory stays bounded whatever the size of the files (mbox files are streamed).
pub fn messages(paths: &[PathBuf], limit: usize) -> Result<Messages> {
    Ok(Messages {
        files: files(paths)?.into_iter(),
        limit,
        mbox: None,
    })
}

/// The reader of an mbox file being split.
type MboxFile = Mbox<BufReader<io::Chain<Cursor<Vec<u8>>, File>>>;

/// Iterator over the messages of [`messages`].
pub struct Messages {
    files: std::vec::IntoIter<PathBuf>,
    limit: usize,
    /// The mbox being split: its label, how many messages it gave, the reader.
    mbox: Option<(String, usize, MboxFile)>,
}

impl Iterator for Messages {
    type Item = Result<Input>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((label, n, mbox)) = self.mbox.as_mut() {
                match mbox.next() {
                    Some(Ok(m)) => {
                        *n += 1;
                        return Some(Ok(Input {
                            label: format!("{label}#{n}"),
                            bytes: m.bytes,
                            size: m.size,
                        }));
                    }
                    Some(Err(e)) => {
                        let label = label.clone();
                        self.mbox = None;
                        return Some(Err(
                            anyhow::Error::new(e).context(format!("cannot read {label}"))
                        ));
                    }
                    None => self.mbox = None,
                }
            }
            let f = self.files.next()?;
            let label = f.display().to_string();
            let (file, bytes, size) = match read_prefix(&f, self.limit) {
                Ok(read) => read,
                Err(e) => {
                    return Some(Err(
                        anyhow::Error::new(e).context(format!("cannot read {label}"))
                    ))
                }
            };
            if is_mbox(&bytes) {
                let reader = BufReader::new(Cursor::new(bytes).chain(file));
                self.mbox = Some((label, 0, Mbox::new(reader, self.limit)));
                continue;
            }
            return Some(Ok(Input { label, bytes, size }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_splits_and_unquotes() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2026\nSubject: one\n\nhello\n>From the start\n\nFrom c@d Mon Jan  1 00:00:00 2026\nSubject: two\n\nbye\n";
        let msgs = split_mbox(mbox);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0], b"Subject: one\n\nhello\nFrom the start\n".to_vec());
        assert_eq!(msgs[1], b"Subject: two\n\nbye\n".to_vec());
    }

    /// The splitter as it was when it read whole files: the streaming one must agree.
    fn reference_split(bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut current: Option<Vec<u8>> = None;
        let mut prev_blank = true;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if prev_blank && line.starts_with(b"From ") {
                if let Some(mut m) = current.take() {
                    if m.ends_with(b"\r\n\r\n") {
                        m.truncate(m.len() - 2);
                    } else if m.ends_with(b"\n\n") {
                        m.truncate(m.len() - 1);
                    }
                    out.push(m);
                }
                current = Some(Vec::new());
                prev_blank = false;
                continue;
            }
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            prev_blank = content.is_empty();
            let msg = current.get_or_insert_with(Vec::new);
            let gt = line.iter().take_while(|&&b| b == b'>').count();
            if gt > 0 && line.get(gt..).is_some_and(|r| r.starts_with(b"From ")) {
                msg.extend_from_slice(&line[1..]);
            } else {
                msg.extend_from_slice(line);
            }
        }
        if let Some(m) = current {
            out.push(m);
        }
        out
    }

    /// A reader that hands out at most `n` bytes per read, so lines straddle buffers.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn streamed(bytes: &[u8], chunk: usize, limit: usize) -> Vec<MboxMessage> {
        Mbox::new(
            BufReader::with_capacity(chunk, Trickle(bytes, chunk)),
            limit,
        )
        .collect::<io::Result<Vec<_>>>()
        .expect("in-memory reads cannot fail")
    }

    #[test]
    fn streaming_matches_the_whole_file_splitter_on_tricky_shapes() {
        let cases: &[&[u8]] = &[
            b"",
            b"From a\n",
            b"From a\n\nFrom b\n",
            b"From a\r\nSubject: x\r\n\r\nbody\r\n\r\nFrom b\r\nS: y\r\n\r\nz",
            b"From a\nx\n\n\n\nFrom b\ny\n\n",
            b"From a\nx\r\n\nFrom b\n",
            b"From a\nx\n\r\nFrom b\n",
            b"From a\n>From x\n>>From y\n>>>From\n>\n>>\nFrom not a separator\n",
            b"From a\nx\n\r",
            b"From a\nno newline at the end",
            b"not an mbox\n\nFrom a\nx\n",
            b"From a\n\r\n\r\nFrom b\n",
        ];
        for case in cases {
            let expected = reference_split(case);
            for chunk in [1, 2, 3, 7, 64] {
                let got: Vec<Vec<u8>> = streamed(case, chunk, usize::MAX)
                    .into_iter()
                    .map(|m| m.bytes)
                    .collect();
                assert_eq!(
                    got,
                    expected,
                    "{:?} in chunks of {chunk}",
                    String::from_utf8_lossy(case)
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn streaming_matches_the_whole_file_splitter(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b"From x@y Mon\n".to_vec()),
                    proptest::strategy::Just(b">From q\n".to_vec()),
                    proptest::strategy::Just(b">>From q\r\n".to_vec()),
                    proptest::strategy::Just(b"\n".to_vec()),
                    proptest::strategy::Just(b"\r\n".to_vec()),
                    proptest::strategy::Just(b"\r".to_vec()),
                    proptest::strategy::Just(b">".to_vec()),
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
                ],
                0..40,
            ),
            chunk in 1usize..9,
        ) {
            let bytes = lines.concat();
            let expected = reference_split(&bytes);
            let got = streamed(&bytes, chunk, usize::MAX);
            proptest::prop_assert_eq!(got.iter().map(|m| m.size).collect::<Vec<_>>(),
                expected.iter().map(Vec::len).collect::<Vec<_>>());
            proptest::prop_assert_eq!(got.into_iter().map(|m| m.bytes).collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn each_message_is_capped_at_the_limit_with_its_full_size() {
        let mut mbox = b"From a\nSubject: big\n\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'x', 100_000)); // one long line
        mbox.extend_from_slice(b"\n>From quoted\n\nFrom b\nSubject: small\n\nhi\n");
        let expected = reference_split(&mbox);
        let got = streamed(&mbox, 4096, 1000);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].bytes, expected[0][..1000].to_vec());
        assert_eq!(got[0].size, expected[0].len());
        assert_eq!(got[1].bytes, expected[1]);
        assert_eq!(got[1].size, expected[1].len());
    }

    #[test]
    fn a_separator_after_a_full_message_is_still_seen() {
        // The first message fills the limit: the reader must still keep enough of the next
        // lines to recognise "From ".
        let mut mbox = b"From a\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'y', 50));
        mbox.extend_from_slice(b"\n\nFrom b\nbody\n");
        let got = streamed(&mbox, 16, 10);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].bytes, b"body\n".to_vec());
    }
}
