//! `--hashcat FILE`: the crackable challenge-response secrets of the run as hashcat input.
//!
//! One file, one line per distinct exchange, no comments (hashcat reads every line as a
//! hash). Lines of several hash modes can share the file: hashcat loads the lines of the mode
//! given with `-m` and skips the others with a warning, so [`HashcatSummary`] says how many
//! lines each mode has and the command line prints that. Modes: 10200 CRAM-MD5, 20 APOP
//! (`md5($salt.$pass)`), 5500 NetNTLMv1 (also with ESS), 5600 NetNTLMv2; see
//! [`crate::proto::hashcat`]. DIGEST-MD5 has no mode for captured exchanges.

use super::file::{Access, AtomicFile};
use crate::proto::hashcat::{
    MODE_APOP, MODE_CRAM_MD5, MODE_NETNTLMV1, MODE_NETNTLMV2, hashcat_line,
};
use crate::session::SessionRecord;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// What each hashcat mode is, for people choosing `-m`.
pub fn mode_name(mode: u32) -> &'static str {
    match mode {
        MODE_CRAM_MD5 => "CRAM-MD5",
        MODE_APOP => "APOP, md5($salt.$pass)",
        MODE_NETNTLMV1 => "NetNTLMv1 / NetNTLMv1+ESS",
        MODE_NETNTLMV2 => "NetNTLMv2",
        _ => "unknown",
    }
}

/// Lines written per hashcat mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashcatSummary {
    /// Mode to number of lines, in mode order.
    pub lines_per_mode: BTreeMap<u32, u64>,
}

impl HashcatSummary {
    /// All lines written.
    pub fn total(&self) -> u64 {
        self.lines_per_mode.values().sum()
    }
}

/// Writes hashcat lines as sessions finish, each distinct line once.
pub struct HashcatWriter<W: Write> {
    out: W,
    /// Hashes of the lines written: repeats of an exchange (the same line) are written once.
    seen: HashSet<u64>,
    summary: HashcatSummary,
}

impl HashcatWriter<Box<dyn Write + Send>> {
    /// A writer on a new private file (the owner's only: the lines are as good as passwords
    /// to whoever cracks them) that takes the name `path` when the returned file is committed
    /// after [`HashcatWriter::finish`].
    pub fn create(path: &Path) -> io::Result<(Self, AtomicFile)> {
        let file = AtomicFile::create(path, Access::Private)?;
        let writer = HashcatWriter::new(Box::new(BufWriter::new(file.handle()?)) as Box<_>);
        Ok((writer, file))
    }
}

impl<W: Write> HashcatWriter<W> {
    /// A writer on `out`.
    pub fn new(out: W) -> Self {
        HashcatWriter {
            out,
            seen: HashSet::new(),
            summary: HashcatSummary::default(),
        }
    }

    /// Writes the lines for a session's crackable credentials.
    pub fn session(&mut self, rec: &SessionRecord) -> io::Result<()> {
        for line in rec.credentials.iter().filter_map(hashcat_line) {
            let mut h = DefaultHasher::new();
            line.line.hash(&mut h);
            if !self.seen.insert(h.finish()) {
                continue;
            }
            self.out.write_all(line.line.as_bytes())?;
            self.out.write_all(b"\n")?;
            *self.summary.lines_per_mode.entry(line.mode).or_default() += 1;
        }
        Ok(())
    }

    /// Flushes and returns what was written.
    pub fn finish(mut self) -> io::Result<(W, HashcatSummary)> {
        self.out.flush()?;
        Ok((self.out, self.summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Credential, CredentialDetails, Endpoint, Protocol};
    use crate::time::Timestamp;

    fn rec_with(creds: Vec<Credential>) -> SessionRecord {
        let ep = |port| Endpoint {
            ip: "192.0.2.1".parse().unwrap(),
            port,
        };
        let mut r = SessionRecord::new(1, Protocol::Pop3, ep(40000), ep(110), Timestamp(0));
        r.credentials = creds;
        r
    }

    fn cred(mechanism: &str, challenge: &str, response: &str) -> Credential {
        Credential {
            ts: Timestamp(0),
            mechanism: mechanism.into(),
            username: Some("tim".into()),
            password: None,
            success: Some(true),
            encrypted: false,
            details: CredentialDetails {
                challenge: Some(challenge.into()),
                response: Some(response.into()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn distinct_lines_once_each_with_counts_per_mode() {
        let apop = cred("APOP", "<1.2@host>", &"a".repeat(32));
        let cram = cred("CRAM-MD5", "<3.4@host>", &"b".repeat(32));
        let mut plain = cred("PLAIN", "", "");
        plain.password = Some("secret".into());
        let mut w = HashcatWriter::new(Vec::new());
        w.session(&rec_with(vec![apop.clone(), cram.clone(), plain]))
            .unwrap();
        w.session(&rec_with(vec![apop])).unwrap();
        let (out, summary) = w.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!(
                "{}:<1.2@host>\n$cram_md5$PDMuNEBob3N0Pg==${}\n",
                "a".repeat(32),
                base64_of(&format!("tim {}", "b".repeat(32)))
            )
        );
        assert_eq!(
            summary.lines_per_mode,
            BTreeMap::from([(20, 1), (10200, 1)])
        );
        assert_eq!(summary.total(), 2);
        assert_eq!(mode_name(10200), "CRAM-MD5");
    }

    fn base64_of(s: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    }
}
