//! The security review of a run, shared by every command: it sees each finished session
//! before any other output, counts logins for the run-level rules, writes the hashcat file,
//! applies `--redact`, and keeps the credentials and findings tables.
//!
//! Order per session matters: the hashcat lines and login counts are taken from the record
//! as captured, then the record is redacted (when asked), and only the redacted record
//! reaches the tables and whatever the caller does with it next.

use super::credentials::CredentialTable;
use super::findings::FindingsTable;
use super::hashcat::{HashcatSummary, HashcatWriter};
use super::redact::redact;
use crate::findings::{DEFAULT_BRUTE_FORCE_THRESHOLD, LoginTracker, RunFinding};
use crate::session::{SessionRecord, Severity};
use std::io::{self, Write};

/// How a run is reviewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewOptions {
    /// Mask secrets in every output.
    pub redact: bool,
    /// Failed logins from one client IP that make a `brute-force` finding.
    pub brute_force_threshold: u64,
    /// Keep the credentials and findings tables (for `analyze`).
    pub tables: bool,
}

impl Default for ReviewOptions {
    fn default() -> Self {
        ReviewOptions {
            redact: false,
            brute_force_threshold: DEFAULT_BRUTE_FORCE_THRESHOLD,
            tables: false,
        }
    }
}

/// Reviews sessions as they finish; see the module documentation.
pub struct Review {
    redact: bool,
    logins: LoginTracker,
    hashcat: Option<HashcatWriter<Box<dyn Write + Send>>>,
    hashcat_error: Option<io::Error>,
    credentials: Option<CredentialTable>,
    findings: Option<FindingsTable>,
    worst: Option<Severity>,
}

/// What a review found once the run is over.
pub struct ReviewReport {
    /// Findings about the run as a whole (brute force, logins after failures across sessions).
    pub run_findings: Vec<RunFinding>,
    /// The most severe finding of any session or of the run.
    pub worst: Option<Severity>,
    /// The credentials table, when tables were asked for.
    pub credentials: Option<CredentialTable>,
    /// The findings table (run-level findings included), when tables were asked for.
    pub findings: Option<FindingsTable>,
    /// What the hashcat file received, or why writing it failed; `None` without `--hashcat`.
    pub hashcat: Option<io::Result<HashcatSummary>>,
}

impl ReviewReport {
    /// Whether a finding at or above `threshold` exists (`--fail-on`).
    pub fn fails(&self, threshold: Severity) -> bool {
        self.worst.is_some_and(|w| w >= threshold)
    }
}

impl Review {
    /// A review with these options and no hashcat file.
    pub fn new(options: ReviewOptions) -> Self {
        Review {
            redact: options.redact,
            logins: LoginTracker::new(options.brute_force_threshold),
            hashcat: None,
            hashcat_error: None,
            credentials: options.tables.then(CredentialTable::new),
            findings: options.tables.then(FindingsTable::new),
            worst: None,
        }
    }

    /// The same review also writing hashcat lines to `writer`.
    pub fn with_hashcat(mut self, writer: HashcatWriter<Box<dyn Write + Send>>) -> Self {
        self.hashcat = Some(writer);
        self
    }

    /// Reviews a finished session; afterwards `rec` is what outputs may show (redacted when
    /// asked).
    pub fn session(&mut self, rec: &mut SessionRecord) {
        self.logins.observe(rec);
        if let Some(w) = self.hashcat.as_mut()
            && self.hashcat_error.is_none()
            && let Err(e) = w.session(rec)
        {
            self.hashcat_error = Some(e);
        }
        if self.redact {
            redact(rec);
        }
        self.note_worst(rec.findings.iter().map(|f| f.severity));
        if let Some(t) = self.credentials.as_mut() {
            t.add(rec);
        }
        if let Some(t) = self.findings.as_mut() {
            t.add_session(rec);
        }
    }

    fn note_worst(&mut self, severities: impl Iterator<Item = Severity>) {
        for s in severities {
            self.worst = Some(self.worst.map_or(s, |w| w.max(s)));
        }
    }

    /// Ends the review: run-level findings, the tables and the hashcat outcome.
    pub fn finish(self) -> ReviewReport {
        let Review {
            logins,
            hashcat,
            hashcat_error,
            credentials,
            mut findings,
            mut worst,
            ..
        } = self;
        let run_findings = logins.finish();
        for f in &run_findings {
            worst = Some(worst.map_or(f.finding.severity, |w| w.max(f.finding.severity)));
        }
        if let Some(t) = findings.as_mut() {
            t.add_run(&run_findings);
        }
        let hashcat = hashcat.map(|w| match hashcat_error {
            Some(e) => Err(e),
            None => w.finish().map(|(_, summary)| summary),
        });
        ReviewReport {
            run_findings,
            worst,
            credentials,
            findings,
            hashcat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Credential, CredentialDetails, Endpoint, Finding, Protocol};
    use crate::time::Timestamp;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test can read after the review consumed it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn session(id: u64, success: bool, severity: Severity) -> SessionRecord {
        let ep = |port| Endpoint {
            ip: "192.0.2.1".parse().unwrap(),
            port,
        };
        let mut r = SessionRecord::new(id, Protocol::Pop3, ep(40000), ep(110), Timestamp(0));
        r.credentials.push(Credential {
            ts: Timestamp(id as i64),
            mechanism: "APOP".into(),
            username: Some("alice".into()),
            password: None,
            success: Some(success),
            encrypted: false,
            details: CredentialDetails {
                challenge: Some("<1.2@host>".into()),
                response: Some(format!("{id:032x}")),
                ..Default::default()
            },
        });
        r.findings.push(Finding {
            rule: "crackable-challenge-response".into(),
            severity,
            message: "m".into(),
            ts: Timestamp(id as i64),
            details: None,
        });
        r
    }

    #[test]
    fn review_feeds_hashcat_before_redaction_and_tables_after() {
        let file = Shared::default();
        let mut review = Review::new(ReviewOptions {
            redact: true,
            brute_force_threshold: 2,
            tables: true,
        })
        .with_hashcat(HashcatWriter::new(Box::new(file.clone())));
        for id in 1..=3 {
            let mut rec = session(id, id == 3, Severity::Medium);
            review.session(&mut rec);
            assert_eq!(
                rec.credentials[0].details.response.as_deref(),
                Some(super::super::redact::MASK)
            );
        }
        let mut report = review.finish();
        let lines = String::from_utf8(file.0.lock().unwrap().clone()).unwrap();
        assert_eq!(lines.lines().count(), 3, "hashcat saw the digests: {lines}");
        assert_eq!(report.hashcat.take().unwrap().unwrap().total(), 3);
        let rules: Vec<&str> = report
            .run_findings
            .iter()
            .map(|f| f.finding.rule.as_str())
            .collect();
        assert_eq!(rules, ["brute-force", "login-after-failures"]);
        // Two failures reach the threshold of 2, so the later success is high.
        assert_eq!(report.worst, Some(Severity::High));
        assert!(report.fails(Severity::High));
        let creds = report
            .credentials
            .as_mut()
            .unwrap()
            .render(&crate::output::table::Terminal::plain(None));
        assert!(creds.contains("<redacted>") && !creds.contains(&format!("{:032x}", 1)));
        assert_eq!(report.findings.as_ref().unwrap().len(), 5);
    }

    #[test]
    fn no_findings_never_fail() {
        let report = Review::new(ReviewOptions::default()).finish();
        assert_eq!(report.worst, None);
        assert!(!report.fails(Severity::Info));
        assert!(report.hashcat.is_none() && report.credentials.is_none());
    }
}
