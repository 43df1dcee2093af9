//! JSON export: a streamed document (`{"mailsift", "sessions", "inputs", "stats", "findings"}`)
//! or NDJSON (one session per line, then one `{"run_findings": [...]}` line when the run has
//! run-level findings).

use crate::capture::InputSummary;
use crate::engine::EngineStats;
use crate::findings::RunFinding;
use crate::session::SessionRecord;
use serde::Serialize;
use std::io::{self, Write};

/// The version string written in every document.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Writes the export document, one session at a time, so memory stays flat on big captures.
///
/// Sessions appear in the order they finish (capture time), which is deterministic.
pub struct DocumentWriter<W: Write> {
    out: W,
    sessions: u64,
    run_findings: Vec<RunFinding>,
    /// A session's text is built here, then written at once (many small writes to a
    /// boxed writer cost more than the serialising).
    scratch: Vec<u8>,
}

impl<W: Write> DocumentWriter<W> {
    /// Starts the document.
    pub fn new(mut out: W) -> io::Result<Self> {
        write!(out, "{{\n  \"mailsift\": ")?;
        serde_json::to_writer(&mut out, VERSION)?;
        write!(out, ",\n  \"sessions\": [")?;
        Ok(DocumentWriter {
            out,
            sessions: 0,
            run_findings: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Sets the run-level findings written as the document's `findings` (empty unless set).
    pub fn run_findings(&mut self, findings: Vec<RunFinding>) {
        self.run_findings = findings;
    }

    /// Appends one session.
    pub fn session(&mut self, rec: &SessionRecord) -> io::Result<()> {
        let sep = if self.sessions == 0 { "\n" } else { ",\n" };
        self.scratch.clear();
        self.scratch.extend_from_slice(sep.as_bytes());
        write_indented(&mut self.scratch, rec, 4)?;
        self.out.write_all(&self.scratch)?;
        if self.scratch.capacity() > 1 << 20 {
            // One huge session should not pin its buffer for the rest of the run.
            self.scratch = Vec::new();
        }
        self.sessions += 1;
        Ok(())
    }

    /// Ends the document with the inputs, run statistics and run-level findings, and flushes.
    pub fn finish(mut self, inputs: &[InputSummary], stats: &EngineStats) -> io::Result<W> {
        if self.sessions > 0 {
            self.out.write_all(b"\n  ")?;
        }
        self.out.write_all(b"],\n  \"inputs\": ")?;
        write_indented_tail(&mut self.out, &inputs, 2)?;
        self.out.write_all(b",\n  \"stats\": ")?;
        write_indented_tail(&mut self.out, stats, 2)?;
        self.out.write_all(b",\n  \"findings\": ")?;
        write_indented_tail(&mut self.out, &self.run_findings, 2)?;
        self.out.write_all(b"\n}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Serialises `value` pretty-printed with every line indented by `indent` spaces.
fn write_indented<W: Write, T: Serialize>(out: &mut W, value: &T, indent: usize) -> io::Result<()> {
    write_spaces(out, indent)?;
    write_indented_tail(out, value, indent)
}

fn write_spaces<W: ?Sized + Write>(out: &mut W, mut n: usize) -> io::Result<()> {
    while n > 0 {
        let run = n.min(SPACES.len());
        out.write_all(&SPACES[..run])?;
        n -= run;
    }
    Ok(())
}

/// Like [`write_indented`] but the first line continues the current one.
fn write_indented_tail<W: Write, T: Serialize>(
    out: &mut W,
    value: &T,
    indent: usize,
) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, IndentedFormatter::new(indent));
    value.serialize(&mut ser)?;
    Ok(())
}

const SPACES: &[u8; 64] = b"                                                                ";

/// serde_json's pretty layout (two spaces a level) shifted right by a fixed number of spaces,
/// written straight to the output: the same bytes as pretty-printing to a string and
/// indenting each line, without the string or the second pass.
struct IndentedFormatter {
    base: usize,
    level: usize,
    has_value: bool,
}

impl IndentedFormatter {
    fn new(base: usize) -> Self {
        IndentedFormatter {
            base,
            level: 0,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + Write>(&self, out: &mut W) -> io::Result<()> {
        out.write_all(b"\n")?;
        write_spaces(out, self.base + 2 * self.level)
    }

    fn open<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        out.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level = self.level.saturating_sub(1);
        if self.has_value {
            self.newline(out)?;
        }
        out.write_all(bracket)
    }

    fn item<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        if !first {
            out.write_all(b",")?;
        }
        self.newline(out)
    }
}

impl serde_json::ser::Formatter for IndentedFormatter {
    fn begin_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.open(out, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.item(out, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _out: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.open(out, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> io::Result<()> {
        self.item(out, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, out: &mut W) -> io::Result<()> {
        out.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _out: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Writes one compact session object per line.
pub struct NdjsonWriter<W: Write> {
    out: W,
}

impl<W: Write> NdjsonWriter<W> {
    /// A writer on `out`.
    pub fn new(out: W) -> Self {
        NdjsonWriter { out }
    }

    /// Writes one session as a line.
    pub fn session(&mut self, rec: &SessionRecord) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, rec)?;
        self.out.write_all(b"\n")
    }

    /// Writes the run-level findings as one last line `{"run_findings": [...]}`, only when
    /// there are any (so a run without them stays one session per line).
    pub fn run_findings(&mut self, findings: &[RunFinding]) -> io::Result<()> {
        if findings.is_empty() {
            return Ok(());
        }
        #[derive(Serialize)]
        struct RunLine<'a> {
            run_findings: &'a [RunFinding],
        }
        serde_json::to_writer(
            &mut self.out,
            &RunLine {
                run_findings: findings,
            },
        )?;
        self.out.write_all(b"\n")
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Endpoint, Protocol};
    use crate::time::Timestamp;

    fn rec(id: u64) -> SessionRecord {
        let ep = |port| Endpoint {
            ip: "192.0.2.1".parse().unwrap(),
            port,
        };
        SessionRecord::new(id, Protocol::Pop3, ep(5000), ep(110), Timestamp(0))
    }

    #[test]
    fn document_is_valid_json_with_and_without_sessions() {
        for n in [0u64, 1, 3] {
            let mut w = DocumentWriter::new(Vec::new()).unwrap();
            for i in 0..n {
                w.session(&rec(i + 1)).unwrap();
            }
            let inputs = vec![InputSummary {
                path: "a.pcap".into(),
                ..Default::default()
            }];
            let out = w.finish(&inputs, &EngineStats::default()).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["mailsift"], VERSION);
            assert_eq!(v["sessions"].as_array().unwrap().len(), n as usize);
            assert_eq!(v["inputs"][0]["path"], "a.pcap");
            assert!(v["stats"]["packets"].is_u64());
            assert_eq!(v["findings"], serde_json::json!([]));
        }
    }

    fn brute_force() -> RunFinding {
        RunFinding {
            finding: crate::session::Finding {
                rule: "brute-force".into(),
                severity: crate::session::Severity::Medium,
                message: "5 failed logins".into(),
                ts: Timestamp(0),
                details: None,
            },
            client: Some("192.0.2.1".parse().unwrap()),
            sessions: vec![1, 2],
        }
    }

    #[test]
    fn run_findings_close_the_document_and_the_ndjson_stream() {
        let mut w = DocumentWriter::new(Vec::new()).unwrap();
        w.session(&rec(1)).unwrap();
        w.run_findings(vec![brute_force()]);
        let out = w.finish(&[], &EngineStats::default()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["findings"][0]["rule"], "brute-force");
        assert_eq!(v["findings"][0]["severity"], "medium");
        assert_eq!(v["findings"][0]["client"], "192.0.2.1");
        assert_eq!(v["findings"][0]["sessions"], serde_json::json!([1, 2]));

        let mut w = NdjsonWriter::new(Vec::new());
        w.session(&rec(1)).unwrap();
        w.run_findings(&[]).unwrap();
        w.run_findings(&[brute_force()]).unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["run_findings"][0]["rule"], "brute-force");
    }

    #[test]
    fn ndjson_is_one_object_per_line() {
        let mut w = NdjsonWriter::new(Vec::new());
        w.session(&rec(1)).unwrap();
        w.session(&rec(2)).unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["id"], 2);
    }

    #[test]
    fn indented_formatter_matches_pretty_printing_with_each_line_shifted() {
        let value = serde_json::json!({
            "a": [1, [], {}, [2, {"b": null}], "x\ny \"q\""],
            "c": {"d": {"e": [true, false]}, "f": ""},
            "g": []
        });
        for indent in [0, 2, 4, 70] {
            let pretty = serde_json::to_string_pretty(&value).expect("json");
            let pad = " ".repeat(indent);
            let want: Vec<String> = pretty.lines().map(|l| format!("{pad}{l}")).collect();
            let mut got = Vec::new();
            write_indented(&mut got, &value, indent).expect("write");
            assert_eq!(String::from_utf8(got).expect("utf8"), want.join("\n"));
        }
    }
}
