//! Line framing from fuzzer bytes, checked against a plain split of the whole stream.
//!
//! Byte 0 picks the line cap (1 to 256, or 64 KiB when 0); byte 1 gives a count `k` (0-7) of
//! chunk lengths that follow; the rest is the stream, fed in chunks whose lengths cycle through
//! those `k` values (the whole stream at once when `k` is 0).

use crate::input::Reader;
use mailsift::proto::line::{LineEnding, LineFramer};

/// A line as a plain split of the whole stream sees it.
struct Expected<'a> {
    body: &'a [u8],
    ending: LineEnding,
}

/// Splits `stream` on LF; the last piece (if not empty) has no ending.
fn expected_lines(stream: &[u8]) -> Vec<Expected<'_>> {
    let mut lines = Vec::new();
    let mut rest = stream;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let (line, ending) = match rest[..i].strip_suffix(b"\r") {
            Some(body) => (body, LineEnding::CrLf),
            None => (&rest[..i], LineEnding::Lf),
        };
        lines.push(Expected { body: line, ending });
        rest = &rest[i + 1..];
    }
    if !rest.is_empty() {
        lines.push(Expected {
            body: rest,
            ending: LineEnding::None,
        });
    }
    lines
}

/// Frames one input and compares every line with the plain split.
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    let cap = match r.u8().unwrap_or(0) {
        0 => 64 << 10,
        n => usize::from(n),
    };
    let count = usize::from(r.u8().unwrap_or(0) % 8);
    let sizes: Vec<usize> = (0..count)
        .map(|_| usize::from(r.u8().unwrap_or(1)).max(1))
        .collect();
    let stream = r.rest();
    let want = expected_lines(stream);
    let mut framer = LineFramer::new(cap);
    let mut got = 0usize;
    let check = |line: mailsift::proto::line::Line<'_>, got: &mut usize| {
        let Some(exp) = want.get(*got) else {
            panic!("line {got} framed beyond the {} in the stream", want.len());
        };
        let keep = exp.body.len().min(cap);
        assert_eq!(line.bytes, &exp.body[..keep], "line {got} bytes");
        assert_eq!(line.ending, exp.ending, "line {got} ending");
        assert_eq!(
            line.discarded,
            (exp.body.len() - keep) as u64,
            "line {got} overflow"
        );
        *got += 1;
    };
    let mut at = 0;
    let mut turn = 0;
    while at < stream.len() {
        let size = if sizes.is_empty() {
            stream.len()
        } else {
            sizes[turn % sizes.len()]
        };
        turn += 1;
        let mut chunk = &stream[at..(at + size).min(stream.len())];
        at += chunk.len();
        while let Some(line) = framer.next_line(&mut chunk) {
            check(line, &mut got);
        }
        assert!(chunk.is_empty(), "input left unread");
        assert!(framer.pending() <= (at as u64), "more pending than read");
    }
    if let Some(line) = framer.flush() {
        check(line, &mut got);
    }
    assert_eq!(got, want.len(), "lines framed");
    assert!(framer.is_empty(), "a flushed framer holds nothing");
}
