//! Counts over finished session records that more than one report shows (the terminal
//! summary, the HTML report's cards), kept in one place so they always agree.

use crate::session::{Protocol, SessionRecord, TlsMode};
use crate::time::Timestamp;

/// Sessions, protocols, TLS, messages, attachments and logins over the records added.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionTally {
    /// Sessions added.
    pub sessions: u64,
    /// SMTP sessions.
    pub smtp: u64,
    /// POP3 sessions.
    pub pop3: u64,
    /// Earliest first packet of a session.
    pub first: Option<Timestamp>,
    /// Latest last packet of a session.
    pub last: Option<Timestamp>,
    /// Sessions that used STARTTLS or STLS.
    pub starttls: u64,
    /// Sessions in implicit TLS.
    pub implicit_tls: u64,
    /// TLS sessions a key log decrypted.
    pub decrypted: u64,
    /// Sessions through a proxy tunnel.
    pub proxied: u64,
    /// Messages recorded.
    pub messages: u64,
    /// Attachments of the recorded messages.
    pub attachments: u64,
    /// Login attempts.
    pub credentials: u64,
    /// Login attempts whose secret went in clear text.
    pub cleartext_credentials: u64,
}

impl SessionTally {
    /// Counts a finished session.
    pub fn add(&mut self, rec: &SessionRecord) {
        self.sessions += 1;
        match rec.protocol {
            Protocol::Smtp => self.smtp += 1,
            Protocol::Pop3 => self.pop3 += 1,
        }
        self.first = Some(self.first.map_or(rec.first_seen, |t| t.min(rec.first_seen)));
        self.last = Some(self.last.map_or(rec.last_seen, |t| t.max(rec.last_seen)));
        if let Some(tls) = &rec.tls {
            match tls.mode {
                TlsMode::Starttls => self.starttls += 1,
                TlsMode::Implicit => self.implicit_tls += 1,
            }
            self.decrypted += u64::from(tls.decrypted);
        }
        self.proxied += u64::from(rec.tunnel.is_some());
        self.messages += rec.messages.len() as u64;
        self.attachments += rec
            .messages
            .iter()
            .filter_map(|m| m.mime.as_ref())
            .map(|m| m.attachments.len() as u64)
            .sum::<u64>();
        self.credentials += rec.credentials.len() as u64;
        self.cleartext_credentials +=
            rec.credentials.iter().filter(|c| !c.encrypted).count() as u64;
    }

    /// Sessions in TLS, either way.
    pub fn tls(&self) -> u64 {
        self.starttls + self.implicit_tls
    }
}
