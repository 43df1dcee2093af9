//! CRLF line framing over a byte stream, with a length cap.
//!
//! Lines are split on LF only: a CR that is not followed by LF stays inside the line, so a
//! CRLF split across two segments is never mistaken for two line ends.

use crate::limits::RetentionBudget;

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    /// `\r\n`, as the RFCs require.
    CrLf,
    /// A bare `\n`.
    Lf,
    /// No terminator: flushed at a gap or at the end of the stream.
    None,
}

/// One framed line, borrowed from the input or from the framer's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line's bytes without its terminator, at most the cap.
    pub bytes: &'a [u8],
    /// How it ended.
    pub ending: LineEnding,
    /// Bytes of this line beyond the cap that were dropped.
    pub discarded: u64,
}

impl Line<'_> {
    /// Length on the wire, terminator included.
    pub fn wire_len(&self) -> u64 {
        self.bytes.len() as u64
            + self.discarded
            + match self.ending {
                LineEnding::CrLf => 2,
                LineEnding::Lf => 1,
                LineEnding::None => 0,
            }
    }

    /// Whether the line was longer than the cap.
    pub fn overlong(&self) -> bool {
        self.discarded > 0
    }

    /// The line as text, invalid UTF-8 replaced.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.bytes)
    }
}

/// Bytes of an unfinished line a framer holds without asking the run's budget: about the
/// RFCs' line limit, so only long SASL tokens and hostile traffic draw on the budget.
const FREE_LINE_BYTES: usize = 1024;

/// Splits a stream into lines; holds at most `max_len` bytes of an unfinished line.
///
/// Beyond [`FREE_LINE_BYTES`], held bytes are reserved against the run's retention budget;
/// when it refuses, the line is cut there as if it had reached `max_len`.
#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    max_len: usize,
    discarded: u64,
    last_was_cr: bool,
    /// `buf` holds a line already returned; clear it on the next call.
    returned: bool,
    /// The budget refused to hold more of this line: the rest of it is discarded.
    cut: bool,
    budget: RetentionBudget,
    /// Bytes of `buf` beyond [`FREE_LINE_BYTES`] reserved against `budget`.
    reserved: usize,
}

impl Drop for LineFramer {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

impl LineFramer {
    /// A framer that keeps lines up to `max_len` bytes (terminator excluded).
    pub fn new(max_len: usize) -> Self {
        LineFramer {
            buf: Vec::new(),
            max_len: max_len.max(1),
            discarded: 0,
            last_was_cr: false,
            returned: false,
            cut: false,
            budget: RetentionBudget::unlimited(),
            reserved: 0,
        }
    }

    /// Reserves held bytes beyond a small allowance against `budget`, shared with the run.
    pub fn with_budget(mut self, budget: RetentionBudget) -> Self {
        self.budget = budget;
        self
    }

    fn reset_if_returned(&mut self) {
        if self.returned {
            self.budget.release(std::mem::take(&mut self.reserved));
            if self.buf.capacity() > FREE_LINE_BYTES {
                // A long line's allocation would otherwise outlive it, unaccounted.
                self.buf = Vec::new();
            }
            self.buf.clear();
            self.cut = false;
            self.discarded = 0;
            self.last_was_cr = false;
            self.returned = false;
        }
    }

    /// Bytes of an unfinished line held or skipped so far.
    pub fn pending(&self) -> u64 {
        if self.returned {
            0
        } else {
            self.buf.len() as u64 + self.discarded
        }
    }

    /// Whether no unfinished line is held.
    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    fn append(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        let room = if self.cut {
            0
        } else {
            self.max_len.saturating_sub(self.buf.len())
        };
        let mut take = room.min(chunk.len());
        let need = self.buf.len() + take;
        let budget = &self.budget;
        if !budget.grow(
            &mut self.buf,
            &mut self.reserved,
            need,
            self.max_len,
            FREE_LINE_BYTES,
        ) {
            // Cut the line at what is already held, as at `max_len`; the rest is counted.
            take = self
                .buf
                .capacity()
                .max(FREE_LINE_BYTES)
                .saturating_sub(self.buf.len())
                .min(chunk.len());
            self.cut = true;
        }
        self.buf.extend_from_slice(&chunk[..take]);
        self.discarded += (chunk.len() - take) as u64;
        self.last_was_cr = chunk[chunk.len() - 1] == b'\r';
    }

    /// Takes the next complete line from `input`, advancing `input` past it.
    ///
    /// Returns `None` when `input` runs out first; its bytes are then held (up to the cap,
    /// the rest counted) and completed by later calls.
    pub fn next_line<'x, 'd: 'x>(&'x mut self, input: &mut &'d [u8]) -> Option<Line<'x>> {
        self.reset_if_returned();
        let data: &'d [u8] = input;
        let Some(i) = memchr_lf(data) else {
            self.append(data);
            *input = &data[data.len()..];
            return None;
        };
        *input = &data[i + 1..];
        let chunk = &data[..i];
        if self.buf.is_empty() && self.discarded == 0 {
            // Fast path: the whole line is in this input; borrow it.
            let (body, ending) = match chunk.last() {
                Some(b'\r') => (&chunk[..chunk.len() - 1], LineEnding::CrLf),
                _ => (chunk, LineEnding::Lf),
            };
            let keep = body.len().min(self.max_len);
            return Some(Line {
                bytes: &body[..keep],
                ending,
                discarded: (body.len() - keep) as u64,
            });
        }
        self.append(chunk);
        let ending = if self.last_was_cr {
            if self.discarded > 0 {
                self.discarded -= 1;
            } else {
                self.buf.pop();
            }
            LineEnding::CrLf
        } else {
            LineEnding::Lf
        };
        self.returned = true;
        Some(Line {
            bytes: &self.buf,
            ending,
            discarded: self.discarded,
        })
    }

    /// Returns the unfinished line, if any, as a line without terminator (at a gap or the end).
    pub fn flush(&mut self) -> Option<Line<'_>> {
        self.reset_if_returned();
        if self.buf.is_empty() && self.discarded == 0 {
            return None;
        }
        self.returned = true;
        Some(Line {
            bytes: &self.buf,
            ending: LineEnding::None,
            discarded: self.discarded,
        })
    }

    /// Drops any unfinished line (after a protocol switch, for instance).
    pub fn clear(&mut self) {
        self.returned = true;
        self.reset_if_returned();
    }
}

fn memchr_lf(s: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_draw_on_the_budget_and_are_cut_when_it_is_spent() {
        let budget = RetentionBudget::new(8192);
        let mut framer = LineFramer::new(1 << 20).with_budget(budget.clone());
        let piece = [b'a'; 1000];
        let mut fed = 0;
        for _ in 0..40 {
            let mut input = &piece[..];
            assert!(framer.next_line(&mut input).is_none());
            fed += piece.len();
        }
        assert!(budget.used() <= 8192 && budget.refusals() > 0);
        let mut end = &b"tail\r\n"[..];
        let line = framer.next_line(&mut end).expect("line");
        let kept = line.bytes.len();
        assert!(kept <= FREE_LINE_BYTES + 8192, "{kept}");
        assert!(
            line.bytes.iter().all(|&b| b == b'a'),
            "no hole in the kept prefix"
        );
        assert_eq!(kept as u64 + line.discarded, fed as u64 + 4);
        // The next line starts afresh and the reservation is returned.
        let mut next = &b"short\r\n"[..];
        assert_eq!(framer.next_line(&mut next).expect("line").bytes, b"short");
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn dropping_a_framer_returns_its_reservation() {
        let budget = RetentionBudget::new(1 << 20);
        let mut framer = LineFramer::new(1 << 20).with_budget(budget.clone());
        let big = vec![b'x'; 50_000];
        let mut input = &big[..];
        assert!(framer.next_line(&mut input).is_none());
        assert!(budget.used() > 0);
        drop(framer);
        assert_eq!(budget.used(), 0);
    }

    fn collect(framer: &mut LineFramer, chunks: &[&[u8]]) -> Vec<(Vec<u8>, LineEnding, u64)> {
        let mut out = Vec::new();
        for c in chunks {
            let mut input = *c;
            while let Some(l) = framer.next_line(&mut input) {
                out.push((l.bytes.to_vec(), l.ending, l.discarded));
            }
            assert!(input.is_empty());
        }
        if let Some(l) = framer.flush() {
            out.push((l.bytes.to_vec(), l.ending, l.discarded));
        }
        out
    }

    #[test]
    fn splits_crlf_and_bare_lf() {
        let mut f = LineFramer::new(100);
        let got = collect(&mut f, &[b"EHLO x\r\nNOOP\nQUIT\r\ntail"]);
        assert_eq!(
            got,
            vec![
                (b"EHLO x".to_vec(), LineEnding::CrLf, 0),
                (b"NOOP".to_vec(), LineEnding::Lf, 0),
                (b"QUIT".to_vec(), LineEnding::CrLf, 0),
                (b"tail".to_vec(), LineEnding::None, 0),
            ]
        );
    }

    #[test]
    fn bare_cr_stays_inside_the_line() {
        let mut f = LineFramer::new(100);
        let got = collect(&mut f, &[b"a\rb\r\n"]);
        assert_eq!(got, vec![(b"a\rb".to_vec(), LineEnding::CrLf, 0)]);
    }

    #[test]
    fn cap_cuts_and_counts() {
        let mut f = LineFramer::new(4);
        let got = collect(&mut f, &[b"abcdefgh\r\nxy\r\n"]);
        assert_eq!(
            got,
            vec![
                (b"abcd".to_vec(), LineEnding::CrLf, 4),
                (b"xy".to_vec(), LineEnding::CrLf, 0)
            ]
        );
        let mut f = LineFramer::new(4);
        let got = collect(&mut f, &[b"abc", b"defgh\r", b"\nxy\r\n"]);
        assert_eq!(
            got,
            vec![
                (b"abcd".to_vec(), LineEnding::CrLf, 4),
                (b"xy".to_vec(), LineEnding::CrLf, 0)
            ]
        );
        assert!(f.pending() <= 4);
    }

    #[test]
    fn every_split_point_gives_the_same_lines() {
        let stream: &[u8] =
            b"220 hi\r\n250-a\r\n250 b\nline with \r inside\r\n\r\nlong-long-long-line\r\nend";
        let mut whole = LineFramer::new(10);
        let expected = collect(&mut whole, &[stream]);
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let mut f = LineFramer::new(10);
                let got = collect(&mut f, &[&stream[..i], &stream[i..j], &stream[j..]]);
                assert_eq!(got, expected, "split at {i},{j}");
            }
        }
    }

    #[test]
    fn held_bytes_stay_bounded_without_newlines() {
        let mut f = LineFramer::new(8);
        let junk = vec![b'x'; 10_000];
        for _ in 0..100 {
            let mut input = &junk[..];
            assert!(f.next_line(&mut input).is_none());
        }
        assert_eq!(f.pending(), 1_000_000);
        let l = f.flush().unwrap();
        assert_eq!(l.bytes.len(), 8);
        assert_eq!(l.discarded, 1_000_000 - 8);
    }
}
