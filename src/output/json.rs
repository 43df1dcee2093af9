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
        })
    }

    /// Sets the run-level findings written as the document's `findings` (empty unless set).
    pub fn run_findings(&mut self, findings: Vec<RunFinding>) {
        self.run_findings = findings;
    }

    /// Appends one session.
    pub fn session(&mut self, rec: &SessionRecord) -> io::Result<()> {
        let sep = if self.sessions == 0 { "\n" } else { ",\n" };
        self.out.write_all(sep.as_bytes())?;
        write_indented(&mut self.out, rec, 4)?;
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
    let text = serde_json::to_string_pretty(value)?;
    let pad = " ".repeat(indent);
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
        }
        out.write_all(pad.as_bytes())?;
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Like [`write_indented`] but the first line continues the current one.
fn write_indented_tail<W: Write, T: Serialize>(
    out: &mut W,
    value: &T,
    indent: usize,
) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let pad = " ".repeat(indent);
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
            out.write_all(pad.as_bytes())?;
        }
        out.write_all(line.as_bytes())?;
    }
    Ok(())
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
}
