//! Multi-line reply bodies (RFC 1939 section 3): dot-unstuffing and the `.` CRLF terminator.
//!
//! Bodies are scanned as bytes, not framed into lines, so a message line of any length keeps
//! its exact content (and its sha256) and no line is copied on the way to the collector.

/// Where the scanner stands relative to the current body line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    /// At the first byte of a line.
    LineStart,
    /// Saw a `.` at the start of a line (not yet emitted: it is stuffing or the terminator).
    Dot,
    /// Saw `.` CR at the start of a line.
    DotCr,
    /// Inside a line.
    InLine,
}

/// What one call to [`DotScanner::scan`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanResult {
    /// Input bytes consumed (all of them unless the terminator was found).
    pub consumed: usize,
    /// Whether the terminator line was reached; the bytes after it are not part of the body.
    pub ended: bool,
}

/// Streams a multi-line body: emits its content unstuffed and finds its terminator line.
///
/// Content keeps each line's terminator as sent (CRLF or bare LF); the terminator line is
/// not content. A line that starts with a dot loses that dot, as RFC 1939 prescribes.
#[derive(Debug, Clone)]
pub struct DotScanner {
    state: ScanState,
    last_was_cr: bool,
    lines: u64,
    bare_lf: u64,
    stuffed: u64,
}

impl Default for DotScanner {
    fn default() -> Self {
        DotScanner::new()
    }
}

impl DotScanner {
    /// A scanner at the start of a body.
    pub fn new() -> Self {
        DotScanner {
            state: ScanState::LineStart,
            last_was_cr: false,
            lines: 0,
            bare_lf: 0,
            stuffed: 0,
        }
    }

    /// A scanner whose body already began with one complete line (seen before the scanner).
    pub fn after_first_line() -> Self {
        DotScanner {
            lines: 1,
            ..DotScanner::new()
        }
    }

    /// Complete body lines so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Lines (the terminator included) that ended with a bare LF.
    pub fn bare_lf(&self) -> u64 {
        self.bare_lf
    }

    /// Lines that began with a dot which was removed.
    pub fn stuffed(&self) -> u64 {
        self.stuffed
    }

    /// Whether the scanner stands between lines (nothing of a line is pending).
    pub fn at_line_start(&self) -> bool {
        self.state == ScanState::LineStart
    }

    /// Scans `input`, handing runs of content bytes to `emit` (borrowed from `input` where
    /// possible, several lines at a time), and stops right after the terminator line.
    pub fn scan<'a>(&mut self, input: &'a [u8], mut emit: impl FnMut(&'a [u8])) -> ScanResult {
        let mut i = 0;
        // Start of the content run not yet handed to `emit`.
        let mut run = 0;
        while i < input.len() {
            match self.state {
                ScanState::LineStart => {
                    if input[i] == b'.' {
                        if run < i {
                            emit(&input[run..i]);
                        }
                        self.state = ScanState::Dot;
                        i += 1;
                        run = i;
                    } else {
                        self.state = ScanState::InLine;
                    }
                }
                ScanState::Dot => match input[i] {
                    b'\r' => {
                        self.state = ScanState::DotCr;
                        i += 1;
                        run = i;
                    }
                    b'\n' => {
                        self.bare_lf += 1;
                        self.state = ScanState::LineStart;
                        return ScanResult {
                            consumed: i + 1,
                            ended: true,
                        };
                    }
                    _ => {
                        self.stuffed += 1;
                        self.state = ScanState::InLine;
                    }
                },
                ScanState::DotCr => {
                    if input[i] == b'\n' {
                        self.state = ScanState::LineStart;
                        return ScanResult {
                            consumed: i + 1,
                            ended: true,
                        };
                    }
                    // `.` CR then something else: a stuffed line whose content starts with CR.
                    self.stuffed += 1;
                    emit(b"\r");
                    self.last_was_cr = true;
                    self.state = ScanState::InLine;
                }
                ScanState::InLine => {
                    let rest = &input[i..];
                    match memchr::memchr(b'\n', rest) {
                        None => {
                            self.last_was_cr = rest.last() == Some(&b'\r');
                            i = input.len();
                        }
                        Some(p) => {
                            let cr_before = if p > 0 {
                                rest[p - 1] == b'\r'
                            } else {
                                self.last_was_cr
                            };
                            if !cr_before {
                                self.bare_lf += 1;
                            }
                            self.lines += 1;
                            self.last_was_cr = false;
                            self.state = ScanState::LineStart;
                            i += p + 1;
                        }
                    }
                }
            }
        }
        if run < input.len() {
            emit(&input[run..]);
        }
        ScanResult {
            consumed: input.len(),
            ended: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<u8>, bool, usize, DotScanner) {
        let mut s = DotScanner::new();
        let mut out = Vec::new();
        for (n, c) in chunks.iter().enumerate() {
            let r = s.scan(c, |b| out.extend_from_slice(b));
            if r.ended {
                return (out, true, n * 1000 + r.consumed, s);
            }
            assert_eq!(r.consumed, c.len());
        }
        (out, false, 0, s)
    }

    #[test]
    fn unstuffs_and_stops_at_the_terminator() {
        let body: &[u8] = b"Subject: x\r\n\r\n..hidden dot\r\n.\r\nnext";
        let (out, ended, consumed, s) = run(&[body]);
        assert!(ended);
        assert_eq!(out, b"Subject: x\r\n\r\n.hidden dot\r\n");
        assert_eq!(consumed, body.len() - 4);
        assert_eq!(s.lines(), 3);
        assert_eq!(s.stuffed(), 1);
        assert_eq!(s.bare_lf(), 0);
    }

    #[test]
    fn empty_body_and_bare_lf_terminator() {
        let (out, ended, consumed, _) = run(&[b".\r\n"]);
        assert!(ended && out.is_empty());
        assert_eq!(consumed, 3);
        let (out, ended, _, s) = run(&[b"a\n.\n"]);
        assert!(ended);
        assert_eq!(out, b"a\n");
        assert_eq!(s.bare_lf(), 2);
    }

    #[test]
    fn dot_lines_that_are_not_terminators() {
        // ". x", ".\rX" and a line of two dots are content; "+OK" inside a body is content too.
        let (out, ended, _, _) = run(&[b". x\r\n.\rX\r\n..\r\n+OK fake\r\n.\r\n"]);
        assert!(ended);
        assert_eq!(out, b" x\r\n\rX\r\n.\r\n+OK fake\r\n");
    }

    #[test]
    fn every_split_point_gives_the_same_content() {
        let body: &[u8] = b"A: b\r\n..x\r\n.\rY\r\nbare\n\r\n.\r\nTAIL";
        let (whole, ended, _, _) = run(&[body]);
        assert!(ended);
        for i in 0..=body.len() {
            for j in i..=body.len() {
                let mut s = DotScanner::new();
                let mut out = Vec::new();
                let mut total = 0;
                let mut done = false;
                for part in [&body[..i], &body[i..j], &body[j..]] {
                    if done {
                        break;
                    }
                    let r = s.scan(part, |b| out.extend_from_slice(b));
                    total += r.consumed;
                    done = r.ended;
                }
                assert!(done, "split {i},{j}");
                assert_eq!(out, whole, "split {i},{j}");
                assert_eq!(total, body.len() - 4, "split {i},{j}");
            }
        }
    }

    #[test]
    fn unterminated_body_consumes_everything() {
        let (out, ended, _, s) = run(&[b"line one\r\nline t", b"wo\r\n"]);
        assert!(!ended);
        assert_eq!(out, b"line one\r\nline two\r\n");
        assert_eq!(s.lines(), 2);
        assert!(s.at_line_start());
    }
}
