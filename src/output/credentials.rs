//! The credentials view: every authentication attempt of the run, repeated attempts grouped.
//!
//! Attempts with the same client IP, server, protocol, mechanism, user name, secret and
//! encryption state are one row with a count, the first and last time, and the outcomes.
//! The client is grouped by IP, not port, so retries over new connections fold together.

use super::table::layout::{self, Column, Value, keep, wrap};
use super::table::{Terminal, plural, section};
use crate::findings::{mechanism_label, quoted};
use crate::session::{Credential, Endpoint, Protocol, SessionRecord};
use crate::time::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;

/// Most distinct rows kept; later distinct attempts are only counted.
pub const MAX_CREDENTIAL_ROWS: usize = 10_000;

/// Longest secret shown in a cell, in characters (the JSON and the hashcat file keep it whole).
pub const MAX_SECRET_CHARS: usize = 60;

/// The secret an attempt exposed, as shown: the password, the bearer token, or the
/// challenge-response material; `None` when nothing secret was captured.
pub fn secret_text(c: &Credential) -> Option<String> {
    let (secret, challenge) = secret_parts(c)?;
    Some(match challenge {
        Some(ch) => format!("{secret} (challenge {ch})"),
        None => secret,
    })
}

/// The secret of [`secret_text`] and, apart, the challenge it answered (if any): the table
/// keeps the secret whole on one line and lets the challenge wrap.
pub fn secret_parts(c: &Credential) -> Option<(String, Option<String>)> {
    let d = &c.details;
    if let Some(p) = &c.password {
        return Some((p.clone(), None));
    }
    if let Some(t) = &d.token {
        return Some((t.clone(), None));
    }
    if let Some(nt) = &d.nt_response {
        let version = d.ntlm_version.as_deref().unwrap_or("NTLM");
        let challenge = d.challenge.as_deref().unwrap_or("?");
        return Some((format!("{version} {nt}"), Some(challenge.to_string())));
    }
    let response = d.response.as_deref()?;
    Some((response.to_string(), d.challenge.clone()))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    client: IpAddr,
    server: Endpoint,
    protocol: Protocol,
    mechanism: String,
    username: Option<String>,
    secret: Option<(String, Option<String>)>,
    encrypted: bool,
}

#[derive(Debug, Clone)]
struct Group {
    key: GroupKey,
    first: Timestamp,
    last: Timestamp,
    count: u64,
    succeeded: u64,
    failed: u64,
}

impl Group {
    fn outcome(&self) -> String {
        let unknown = self.count - self.succeeded - self.failed;
        let parts: Vec<(u64, &str)> = [
            (self.succeeded, "ok"),
            (self.failed, "failed"),
            (unknown, "no reply"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .collect();
        match parts.as_slice() {
            [(_, only)] => only.to_string(),
            many => many
                .iter()
                .map(|(n, what)| format!("{n} {what}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Accumulates the credentials of finished sessions, grouped; rendered ordered by first time.
#[derive(Debug, Default)]
pub struct CredentialTable {
    index: HashMap<GroupKey, usize>,
    groups: Vec<Group>,
    attempts: u64,
    not_shown: u64,
}

impl CredentialTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the credentials of a session.
    pub fn add(&mut self, rec: &SessionRecord) {
        for c in &rec.credentials {
            self.add_one(rec, c);
        }
    }

    fn add_one(&mut self, rec: &SessionRecord, c: &Credential) {
        self.attempts += 1;
        let key = GroupKey {
            client: rec.client.ip,
            server: rec.server,
            protocol: rec.protocol,
            mechanism: c.mechanism.clone(),
            username: c.username.clone(),
            secret: secret_parts(c),
            encrypted: c.encrypted,
        };
        let i = match self.index.get(&key) {
            Some(&i) => i,
            None if self.groups.len() >= MAX_CREDENTIAL_ROWS => {
                self.not_shown += 1;
                return;
            }
            None => {
                self.groups.push(Group {
                    key: key.clone(),
                    first: c.ts,
                    last: c.ts,
                    count: 0,
                    succeeded: 0,
                    failed: 0,
                });
                self.index.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let Some(g) = self.groups.get_mut(i) else {
            return;
        };
        g.first = g.first.min(c.ts);
        g.last = g.last.max(c.ts);
        g.count += 1;
        match c.success {
            Some(true) => g.succeeded += 1,
            Some(false) => g.failed += 1,
            None => {}
        }
    }

    /// Rows (groups of attempts).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether no attempt was seen.
    pub fn is_empty(&self) -> bool {
        self.attempts == 0
    }

    /// Attempts seen, including those folded into rows and those past the row limit.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// Attempts that fitted in no row because [`MAX_CREDENTIAL_ROWS`] was reached.
    pub fn not_shown(&self) -> u64 {
        self.not_shown
    }

    /// The table under its title, fitted to `term`, or a line saying none were seen.
    pub fn render(&mut self, term: &Terminal) -> String {
        if self.is_empty() {
            return "\nCredentials: none seen\n".to_string();
        }
        self.groups.sort_by(|a, b| {
            (a.first, a.key.client, a.key.server.port).cmp(&(
                b.first,
                b.key.client,
                b.key.server.port,
            ))
        });
        // Sorting moved the rows; the index is only needed while adding.
        self.index.clear();
        let rows: Vec<Vec<Value>> = self
            .groups
            .iter()
            .take(term.row_limit())
            .map(Group::values)
            .collect();
        let fitted = layout::render(&COLUMNS, &rows, term);
        let count = format!(
            "{} in {}",
            plural(self.attempts, "attempt", "attempts"),
            plural(self.groups.len() as u64, "row", "rows")
        );
        let hidden = (self.groups.len() - rows.len()) as u64;
        let mut s = format!(
            "\n{}",
            section("Credentials", &count, hidden, &fitted, term)
        );
        if self.not_shown > 0 {
            s.push_str(&format!(
                "({} not shown: `mailsift export` lists them all)\n",
                plural(self.not_shown, "more attempt", "more attempts")
            ));
        }
        s
    }
}

/// Columns of the credentials table: the time, the user and the secret stay at any width.
const COLUMNS: [Column; 12] = [
    keep("first seen (UTC)", "first", 0),
    keep("last seen", "last", 9),
    keep("count", "n", 2).right(),
    keep("client", "client", 3),
    keep("server", "server", 4),
    keep("proto", "proto", 8),
    keep("mechanism", "mech", 5),
    keep("user", "user", 0),
    keep("secret", "secret", 0),
    wrap("challenge", "challenge", 7),
    wrap("outcome", "outcome", 1),
    keep("encrypted", "enc", 6),
];

impl Group {
    fn values(&self) -> Vec<Value> {
        let k = &self.key;
        let last = if self.count > 1 {
            let span = self.last.seconds_since(self.first);
            Value::Short(self.last.to_string(), format!("+{span:.3}s"))
        } else {
            Value::Text(String::new())
        };
        vec![
            Value::Time(self.first),
            last,
            Value::Text(self.count.to_string()),
            Value::Text(k.client.to_string()),
            Value::Text(k.server.to_string()),
            Value::Text(k.protocol.as_str().into()),
            Value::Text(mechanism_label(&k.mechanism).to_string()),
            Value::Text(k.username.as_deref().map_or("-".to_string(), quoted)),
            Value::Text(
                k.secret
                    .as_ref()
                    .map_or("-".to_string(), |(s, _)| shown_secret(s)),
            ),
            Value::Text(
                k.secret
                    .as_ref()
                    .and_then(|(_, ch)| ch.as_deref())
                    .map_or(String::new(), |ch| layout::one_line(&quoted(ch))),
            ),
            Value::Text(self.outcome()),
            Value::Text(if k.encrypted { "yes" } else { "no" }.into()),
        ]
    }
}

fn shown_secret(secret: &str) -> String {
    let mut out = quoted(secret);
    if let Some((cut, _)) = out.char_indices().nth(MAX_SECRET_CHARS) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::CredentialDetails;

    fn rec(id: u64, client: &str, port: u16) -> SessionRecord {
        SessionRecord::new(
            id,
            Protocol::Pop3,
            Endpoint {
                ip: client.parse().unwrap(),
                port: 40000 + id as u16,
            },
            Endpoint {
                ip: "192.0.2.1".parse().unwrap(),
                port,
            },
            Timestamp(0),
        )
    }

    fn attempt(ts: i64, user: &str, password: &str, success: Option<bool>) -> Credential {
        Credential {
            ts: Timestamp::from_parts(1_700_000_000 + ts, 0),
            mechanism: "USER".into(),
            username: Some(user.into()),
            password: Some(password.into()),
            success,
            encrypted: false,
            details: CredentialDetails::default(),
        }
    }

    #[test]
    fn repeated_attempts_group_across_sessions_of_one_client() {
        let mut t = CredentialTable::new();
        for (id, ts, ok) in [(1, 10, Some(false)), (2, 30, Some(false)), (3, 20, None)] {
            let mut r = rec(id, "198.51.100.7", 110);
            r.credentials.push(attempt(ts, "bob", "guess1", ok));
            t.add(&r);
        }
        let mut r = rec(4, "198.51.100.7", 110);
        r.credentials
            .push(attempt(40, "bob", "Builder-7", Some(true)));
        r.credentials
            .push(attempt(41, "alice", "guess1", Some(false)));
        t.add(&r);
        // Another client, another server port, or encrypted: other rows.
        let mut r = rec(5, "198.51.100.8", 110);
        r.credentials
            .push(attempt(50, "bob", "guess1", Some(false)));
        t.add(&r);
        let mut r = rec(6, "198.51.100.7", 995);
        r.credentials
            .push(attempt(60, "bob", "guess1", Some(false)));
        t.add(&r);
        let mut r = rec(7, "198.51.100.7", 110);
        let mut enc = attempt(70, "bob", "guess1", Some(false));
        enc.encrypted = true;
        r.credentials.push(enc);
        t.add(&r);

        assert_eq!(t.attempts(), 8);
        assert_eq!(t.len(), 6);
        let out = t.render(&Terminal::plain(None));
        let first = &t.groups[0];
        assert_eq!(first.count, 3);
        assert_eq!(first.first, Timestamp::from_parts(1_700_000_010, 0));
        assert_eq!(first.last, Timestamp::from_parts(1_700_000_030, 0));
        assert_eq!(first.outcome(), "2 failed, 1 no reply");
        assert_eq!(t.groups[1].outcome(), "ok");
        assert!(out.contains("guess1") && out.contains("Builder-7"));
        assert!(out.contains("USER/PASS"));
    }

    #[test]
    fn secrets_shown_per_mechanism() {
        let mut c = attempt(0, "u", "pw", None);
        assert_eq!(secret_text(&c).as_deref(), Some("pw"));
        c.password = None;
        assert_eq!(secret_text(&c), None);
        c.details.challenge = Some("<1.2@host>".into());
        c.details.response = Some("c4c9334bac560ecc979e58001b3e22fb".into());
        assert_eq!(
            secret_text(&c).as_deref(),
            Some("c4c9334bac560ecc979e58001b3e22fb (challenge <1.2@host>)")
        );
        c.details.token = Some("ya29.tok".into());
        assert_eq!(secret_text(&c).as_deref(), Some("ya29.tok"));
        let long = shown_secret(&"a".repeat(200));
        assert_eq!(long.chars().count(), MAX_SECRET_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn rows_are_bounded() {
        let mut t = CredentialTable::new();
        let mut r = rec(1, "198.51.100.7", 110);
        for i in 0..MAX_CREDENTIAL_ROWS + 3 {
            r.credentials
                .push(attempt(0, "bob", &format!("pw{i}"), Some(false)));
        }
        t.add(&r);
        assert_eq!(t.len(), MAX_CREDENTIAL_ROWS);
        assert_eq!(t.not_shown(), 3);
        assert_eq!(t.attempts(), MAX_CREDENTIAL_ROWS as u64 + 3);
    }
}
