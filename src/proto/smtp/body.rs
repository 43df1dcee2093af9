//! The DATA body: finds the end-of-data line and removes dot-stuffing (RFC 5321 section 4.5.2),
//! streaming, without copying the content it passes on.

/// Wire length above which a body line breaks the RFC 5321 limit (998 characters plus CRLF).
const MAX_RFC_LINE: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a line.
    LineStart,
    /// The line began with a dot (not passed on).
    Dot,
    /// The line began with a dot and a CR (neither passed on yet).
    DotCr,
    /// Inside a line.
    InLine,
}

/// Counts of irregular lines seen in a body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BodyStats {
    /// Lines ended by LF without CR.
    pub bare_lf_lines: u64,
    /// Lines longer than 998 characters.
    pub long_lines: u64,
    /// Lines whose leading dot was removed.
    pub stuffed_lines: u64,
}

/// How the body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyEnd {
    /// Bytes of the input consumed, the end-of-data line included.
    pub consumed: usize,
    /// Whether the end was exactly `CRLF . CRLF`; false for bare-LF variants, which servers
    /// disagree on (the root of SMTP smuggling).
    pub canonical: bool,
}

/// Streams a DATA body: passes on content, drops stuffing dots, stops at the end-of-data line.
///
/// A line consisting of a single dot ends the body whether its line ends are CRLF or bare LF;
/// bare CR is not a line end. The content passed on is everything before the final dot line,
/// with the line end that precedes it.
#[derive(Debug, Clone)]
pub struct DotUnstuffer {
    state: State,
    /// The last byte passed on within the current line was a CR.
    pending_cr: bool,
    /// The previous line ended with CRLF (true at the start of the body).
    prev_line_crlf: bool,
    line_len: u64,
    stats: BodyStats,
}

impl Default for DotUnstuffer {
    fn default() -> Self {
        DotUnstuffer {
            state: State::LineStart,
            pending_cr: false,
            prev_line_crlf: true,
            line_len: 0,
            stats: BodyStats::default(),
        }
    }
}

impl DotUnstuffer {
    /// A scanner at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Irregular lines seen so far.
    pub fn stats(&self) -> BodyStats {
        self.stats
    }

    fn end_line(&mut self, crlf: bool) {
        if !crlf {
            self.stats.bare_lf_lines += 1;
        }
        if self.line_len > MAX_RFC_LINE {
            self.stats.long_lines += 1;
        }
        self.prev_line_crlf = crlf;
        self.line_len = 0;
        self.state = State::LineStart;
    }

    /// Scans `input`, handing content to `out` in as few slices as possible.
    ///
    /// Returns where the body ended, or `None` when all of `input` is body (more will follow).
    pub fn feed(&mut self, input: &[u8], out: &mut impl FnMut(&[u8])) -> Option<BodyEnd> {
        let mut i = 0;
        // Start of the run of input not yet passed on.
        let mut run = 0;
        while let Some(&b) = input.get(i) {
            match self.state {
                State::LineStart => {
                    self.pending_cr = false;
                    if b == b'.' {
                        if run < i {
                            out(&input[run..i]);
                        }
                        i += 1;
                        run = i;
                        self.line_len = 1;
                        self.state = State::Dot;
                    } else {
                        self.state = State::InLine;
                    }
                }
                State::Dot => match b {
                    b'\r' => {
                        i += 1;
                        run = i;
                        self.line_len += 1;
                        self.state = State::DotCr;
                    }
                    b'\n' => {
                        return Some(BodyEnd {
                            consumed: i + 1,
                            canonical: false,
                        });
                    }
                    _ => {
                        self.stats.stuffed_lines += 1;
                        self.state = State::InLine;
                    }
                },
                State::DotCr => {
                    if b == b'\n' {
                        return Some(BodyEnd {
                            consumed: i + 1,
                            canonical: self.prev_line_crlf,
                        });
                    }
                    // `.` CR then more: a stuffed line whose content starts with that CR.
                    self.stats.stuffed_lines += 1;
                    out(b"\r");
                    self.pending_cr = true;
                    self.state = State::InLine;
                }
                State::InLine => match memchr::memchr(b'\n', &input[i..]) {
                    Some(k) => {
                        let lf = i + k;
                        let crlf = if lf > i {
                            input[lf - 1] == b'\r'
                        } else {
                            self.pending_cr
                        };
                        self.line_len += (k + 1) as u64;
                        i = lf + 1;
                        self.end_line(crlf);
                    }
                    None => {
                        self.line_len += (input.len() - i) as u64;
                        self.pending_cr = input.last() == Some(&b'\r');
                        i = input.len();
                    }
                },
            }
        }
        if run < i {
            out(&input[run..i]);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` and returns (content, end, bytes consumed from the last chunk).
    fn run(chunks: &[&[u8]]) -> (Vec<u8>, Option<BodyEnd>, DotUnstuffer) {
        let mut u = DotUnstuffer::new();
        let mut content = Vec::new();
        let mut end = None;
        for c in chunks {
            end = u.feed(c, &mut |s| content.extend_from_slice(s));
            if end.is_some() {
                break;
            }
        }
        (content, end, u)
    }

    #[test]
    fn ends_at_dot_line_and_keeps_preceding_crlf() {
        let (content, end, u) = run(&[b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n"]);
        assert_eq!(content, b"Subject: x\r\n\r\nhello\r\n");
        let end = end.unwrap();
        assert!(end.canonical);
        assert_eq!(end.consumed, 24);
        assert_eq!(u.stats(), BodyStats::default());
    }

    #[test]
    fn empty_body() {
        let (content, end, _) = run(&[b".\r\n"]);
        assert!(content.is_empty());
        assert_eq!(end.unwrap().consumed, 3);
    }

    #[test]
    fn removes_stuffing_dots() {
        let (content, end, u) = run(&[b"..leading\r\n...\r\n.x\r\n..\r\n.\r\n"]);
        assert_eq!(content, b".leading\r\n..\r\nx\r\n.\r\n");
        assert!(end.is_some());
        assert_eq!(u.stats().stuffed_lines, 4);
    }

    #[test]
    fn dot_cr_without_lf_is_content() {
        let (content, end, _) = run(&[b".\rx\r\n.\r\n"]);
        assert_eq!(content, b"\rx\r\n");
        assert!(end.unwrap().canonical);
    }

    #[test]
    fn tolerates_bare_lf_and_reports_it() {
        let (content, end, u) = run(&[b"a\nb\r\n.\n"]);
        assert_eq!(content, b"a\nb\r\n");
        assert!(!end.unwrap().canonical);
        assert_eq!(u.stats().bare_lf_lines, 1);

        let (content, end, _) = run(&[b"a\n.\r\n"]);
        assert_eq!(content, b"a\n");
        assert!(!end.unwrap().canonical, "LF . CRLF is not canonical");
    }

    #[test]
    fn counts_long_lines() {
        let mut body = vec![b'x'; 998];
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&[b'y'; 999]);
        body.extend_from_slice(b"\r\n.\r\n");
        let (_, end, u) = run(&[&body]);
        assert!(end.is_some());
        assert_eq!(u.stats().long_lines, 1);
    }

    #[test]
    fn every_split_gives_the_same_content() {
        let body: &[u8] = b"From: a\r\n\r\n..x\r\n.\rq\r\nline\n\r\n..\r\n.\r\nNEXT";
        let (whole, whole_end, _) = run(&[body]);
        let whole_end = whole_end.unwrap();
        for i in 0..=body.len() {
            for j in i..=body.len() {
                let mut u = DotUnstuffer::new();
                let mut content = Vec::new();
                let mut consumed = 0;
                let mut end = None;
                for (start, c) in [(0, &body[..i]), (i, &body[i..j]), (j, &body[j..])] {
                    if let Some(e) = u.feed(c, &mut |s| content.extend_from_slice(s)) {
                        consumed = start + e.consumed;
                        end = Some(e);
                        break;
                    }
                }
                assert_eq!(content, whole, "split {i},{j}");
                assert_eq!(consumed, whole_end.consumed, "split {i},{j}");
                assert_eq!(end.unwrap().canonical, whole_end.canonical);
            }
        }
    }
}
