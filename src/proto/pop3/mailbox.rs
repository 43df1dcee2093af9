//! What a POP3 session reveals beyond its events: protocol state, server capabilities and
//! the mailbox as the client saw it (listings, retrievals, deletions).

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Most entries kept in each mailbox map or set; later ones are counted in an anomaly.
pub const MAX_MAILBOX_ENTRIES: usize = 100_000;

/// Most capability lines kept from one CAPA reply.
pub const MAX_CAPABILITY_LINES: usize = 256;

/// Longest capability line or mechanism name kept, in characters.
pub const MAX_CAPABILITY_LEN: usize = 1024;

/// Most mechanisms kept from a bare `AUTH` listing.
pub const MAX_AUTH_MECHANISMS: usize = 64;

/// The RFC 1939 session state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pop3State {
    /// Before a successful login.
    #[default]
    Authorization,
    /// Logged in: the mailbox is open.
    Transaction,
    /// QUIT was accepted after login: deletions were committed.
    Update,
    /// Picked up mid-stream and nothing has shown the state yet.
    Unknown,
}

/// The server's capabilities, from a CAPA reply (RFC 2449).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Capabilities {
    /// Every capability line as sent, in order.
    pub raw: Vec<String>,
    /// SASL mechanisms offered (`SASL` capability).
    pub sasl: Vec<String>,
    /// STLS offered (RFC 2595).
    pub stls: bool,
    /// PIPELINING offered.
    pub pipelining: bool,
    /// UIDL offered.
    pub uidl: bool,
    /// TOP offered.
    pub top: bool,
    /// USER/PASS offered.
    pub user: bool,
    /// RESP-CODES offered.
    pub resp_codes: bool,
    /// AUTH-RESP-CODE offered (RFC 3206).
    pub auth_resp_code: bool,
    /// UTF8 offered (RFC 6856).
    pub utf8: bool,
    /// IMPLEMENTATION text, naming the server software.
    pub implementation: Option<String>,
    /// EXPIRE policy argument.
    pub expire: Option<String>,
    /// LOGIN-DELAY argument, in seconds.
    pub login_delay: Option<String>,
}

/// A string cut to at most `max` characters, on a character boundary.
pub(crate) fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => s[..end].to_string(),
        None => s.to_string(),
    }
}

impl Capabilities {
    /// Adds one capability line; false when the line limit was reached (the line is dropped).
    pub fn add_line(&mut self, line: &str) -> bool {
        if self.raw.len() >= MAX_CAPABILITY_LINES {
            return false;
        }
        let line = bounded(line.trim_end(), MAX_CAPABILITY_LEN);
        let mut words = line.split_ascii_whitespace();
        let name = words.next().unwrap_or("").to_ascii_uppercase();
        let rest = || {
            let r = line
                .trim_start()
                .get(name.len()..)
                .unwrap_or("")
                .trim_start();
            (!r.is_empty()).then(|| r.to_string())
        };
        match name.as_str() {
            "SASL" => self.sasl.extend(words.map(str::to_string)),
            "STLS" => self.stls = true,
            "PIPELINING" => self.pipelining = true,
            "UIDL" => self.uidl = true,
            "TOP" => self.top = true,
            "USER" => self.user = true,
            "RESP-CODES" => self.resp_codes = true,
            "AUTH-RESP-CODE" => self.auth_resp_code = true,
            "UTF8" => self.utf8 = true,
            "IMPLEMENTATION" => self.implementation = rest(),
            "EXPIRE" => self.expire = rest(),
            "LOGIN-DELAY" => self.login_delay = rest(),
            _ => {}
        }
        self.raw.push(line);
        true
    }
}

/// The mailbox as the session showed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Mailbox {
    /// Message count from the last STAT reply.
    pub message_count: Option<u64>,
    /// Mailbox size in octets from the last STAT reply.
    pub size: Option<u64>,
    /// Message number to size in octets, from LIST.
    pub sizes: BTreeMap<u64, u64>,
    /// Message number to unique id, from UIDL.
    pub uids: BTreeMap<u64, String>,
    /// Messages sent in full (RETR accepted).
    pub retrieved: BTreeSet<u64>,
    /// Messages sent in part (TOP accepted).
    pub partially_retrieved: BTreeSet<u64>,
    /// Messages marked deleted (DELE accepted) and not unmarked since.
    pub deleted: BTreeSet<u64>,
    /// Messages whose deletion mark an accepted RSET removed.
    pub undeleted_by_rset: BTreeSet<u64>,
    /// Whether an accepted QUIT in the TRANSACTION state committed the deletions.
    pub deletions_committed: bool,
}

/// A bounded insert into a mailbox map or set failed: the limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxFull;

fn insert_bounded<K: Ord, V>(map: &mut BTreeMap<K, V>, k: K, v: V) -> Result<(), MailboxFull> {
    if map.len() >= MAX_MAILBOX_ENTRIES && !map.contains_key(&k) {
        return Err(MailboxFull);
    }
    map.insert(k, v);
    Ok(())
}

fn add_bounded(set: &mut BTreeSet<u64>, n: u64) -> Result<(), MailboxFull> {
    if set.len() >= MAX_MAILBOX_ENTRIES && !set.contains(&n) {
        return Err(MailboxFull);
    }
    set.insert(n);
    Ok(())
}

impl Mailbox {
    /// Records a message's size (LIST).
    pub fn set_size(&mut self, n: u64, size: u64) -> Result<(), MailboxFull> {
        insert_bounded(&mut self.sizes, n, size)
    }

    /// Records a message's unique id (UIDL).
    pub fn set_uid(&mut self, n: u64, uid: &str) -> Result<(), MailboxFull> {
        insert_bounded(&mut self.uids, n, uid.to_string())
    }

    /// Records a full retrieval (RETR).
    pub fn mark_retrieved(&mut self, n: u64) -> Result<(), MailboxFull> {
        add_bounded(&mut self.retrieved, n)
    }

    /// Records a partial retrieval (TOP).
    pub fn mark_partially_retrieved(&mut self, n: u64) -> Result<(), MailboxFull> {
        add_bounded(&mut self.partially_retrieved, n)
    }

    /// Records an accepted DELE.
    pub fn mark_deleted(&mut self, n: u64) -> Result<(), MailboxFull> {
        add_bounded(&mut self.deleted, n)
    }

    /// Records an accepted RSET: every deletion mark is removed.
    pub fn reset(&mut self) {
        let marks = std::mem::take(&mut self.deleted);
        for n in marks {
            // Both sets are bounded by the same limit, so at worst some marks go uncounted.
            let _ = add_bounded(&mut self.undeleted_by_rset, n);
        }
    }
}

/// What a POP3 session established, beyond its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pop3Summary {
    /// The user who logged in, else the last one who tried.
    pub user: Option<String>,
    /// The greeting's text (after `+OK`).
    pub greeting: Option<String>,
    /// The APOP timestamp in the greeting, angle brackets included.
    pub apop_timestamp: Option<String>,
    /// The RFC 1939 state the session reached.
    pub state: Pop3State,
    /// Capabilities from the last CAPA reply, null when none was seen.
    pub capabilities: Option<Capabilities>,
    /// Mechanisms listed in reply to a bare `AUTH`, null when none was seen.
    pub auth_mechanisms: Option<Vec<String>>,
    /// The mailbox view.
    pub mailbox: Mailbox,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_from_lines() {
        let mut c = Capabilities::default();
        for l in [
            "TOP",
            "USER",
            "UIDL",
            "STLS",
            "SASL PLAIN LOGIN",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "LOGIN-DELAY 900",
            "IMPLEMENTATION Example server 1.0",
            "X-UNKNOWN thing",
        ] {
            assert!(c.add_line(l));
        }
        assert!(c.top && c.user && c.uidl && c.stls && c.pipelining);
        assert!(c.resp_codes && c.auth_resp_code && !c.utf8);
        assert_eq!(c.sasl, ["PLAIN", "LOGIN"]);
        assert_eq!(c.implementation.as_deref(), Some("Example server 1.0"));
        assert_eq!(c.expire.as_deref(), Some("NEVER"));
        assert_eq!(c.login_delay.as_deref(), Some("900"));
        assert_eq!(c.raw.len(), 12);
        assert_eq!(c.raw[11], "X-UNKNOWN thing");
    }

    #[test]
    fn capability_lines_are_bounded() {
        let mut c = Capabilities::default();
        for _ in 0..MAX_CAPABILITY_LINES {
            assert!(c.add_line("X"));
        }
        assert!(!c.add_line("TOP"));
        assert!(!c.top);
        let mut c = Capabilities::default();
        c.add_line(&"é".repeat(MAX_CAPABILITY_LEN + 10));
        assert_eq!(c.raw[0].chars().count(), MAX_CAPABILITY_LEN);
    }

    #[test]
    fn mailbox_marks_and_reset() {
        let mut m = Mailbox::default();
        m.mark_deleted(1).unwrap();
        m.mark_deleted(3).unwrap();
        m.reset();
        assert!(m.deleted.is_empty());
        assert_eq!(
            m.undeleted_by_rset.iter().copied().collect::<Vec<_>>(),
            [1, 3]
        );
        m.mark_deleted(2).unwrap();
        assert_eq!(m.deleted.len(), 1);
    }

    #[test]
    fn mailbox_maps_are_bounded() {
        let mut m = Mailbox::default();
        for n in 0..MAX_MAILBOX_ENTRIES as u64 {
            m.set_size(n, 1).unwrap();
        }
        assert_eq!(m.set_size(u64::MAX, 1), Err(MailboxFull));
        // Updating an existing entry is still allowed.
        assert_eq!(m.set_size(5, 9), Ok(()));
        assert_eq!(m.sizes[&5], 9);
    }

    #[test]
    fn summary_serialises_maps_with_string_keys() {
        let mut s = Pop3Summary::default();
        s.mailbox.set_size(1, 120).unwrap();
        s.mailbox.set_uid(1, "abc").unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["mailbox"]["sizes"]["1"], 120);
        assert_eq!(v["mailbox"]["uids"]["1"], "abc");
        assert_eq!(v["state"], "authorization");
        assert!(v["capabilities"].is_null());
    }
}
