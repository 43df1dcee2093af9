//! `export --format ecs`: NDJSON in the Elastic Common Schema, for Elasticsearch, Kibana,
//! Elastic Security and anything else that reads ECS.
//!
//! Each finished session becomes several events, one JSON object per line:
//! - the session (`event.dataset: mailsift.session`): endpoints, times, bytes, TLS;
//! - each message (`mailsift.message`): `email.*` from its headers and attachments;
//! - each authentication attempt (`mailsift.credential`): `event.outcome`, `user.name`;
//! - each finding (`mailsift.finding`, `event.kind: alert`): `rule.*`, `event.severity`;
//!
//! and run-level findings follow the last session. Every event carries the session's
//! `source`/`destination`, `network` and `mailsift.session.uid`, so the events of one session
//! can be gathered by that uid (the same as the `uid` of the Zeek logs). Fields ECS does not
//! define are under `mailsift.`. Empty and unknown values are left out, not written as null.

use super::credentials::secret_text;
use super::naming::{file_uid, rule_name, session_uid, severity_number};
use crate::findings::RunFinding;
use crate::mail::{AddressRecord, AttachmentRecord};
use crate::session::{
    Credential, Finding, MessageRecord, MessageSource, Protocol, SessionRecord, TlsMode,
};
use crate::time::Timestamp;
use serde_json::{Map, Value, json};
use std::io::{self, Write};
use std::net::IpAddr;

/// The ECS version the events follow, written in every event as `ecs.version`.
pub const ECS_VERSION: &str = "8.17.0";

/// Writes ECS events, one per line.
pub struct EcsWriter<W: Write> {
    out: W,
    /// One event's text, written at once.
    line: Vec<u8>,
}

impl<W: Write> EcsWriter<W> {
    /// A writer on `out`.
    pub fn new(out: W) -> Self {
        EcsWriter {
            out,
            line: Vec::new(),
        }
    }

    fn write_event(&mut self, event: &Value) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, event)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    /// Writes the events of one session.
    pub fn session(&mut self, rec: &SessionRecord) -> io::Result<()> {
        for event in session_events(rec) {
            self.write_event(&event)?;
        }
        Ok(())
    }

    /// Writes one alert per run-level finding.
    pub fn run_findings(&mut self, findings: &[RunFinding]) -> io::Result<()> {
        for f in findings {
            self.write_event(&run_finding_event(f))?;
        }
        Ok(())
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Every event of one session, in the order written: the session, its messages, its
/// credentials, its findings.
pub fn session_events(rec: &SessionRecord) -> Vec<Value> {
    let ctx = SessionContext::new(rec);
    let mut events =
        Vec::with_capacity(1 + rec.messages.len() + rec.credentials.len() + rec.findings.len());
    events.push(session_event(rec, &ctx));
    events.extend(rec.messages.iter().map(|m| message_event(rec, &ctx, m)));
    events.extend(rec.credentials.iter().map(|c| credential_event(&ctx, c)));
    events.extend(rec.findings.iter().map(|f| finding_event(&ctx, f)));
    events
}

/// What every event of a session repeats: who talked to whom, over what.
struct SessionContext {
    uid: String,
    common: Map<String, Value>,
}

impl SessionContext {
    fn new(rec: &SessionRecord) -> Self {
        let uid = session_uid(rec.id);
        let common = json!({
            "ecs": {"version": ECS_VERSION},
            "source": {"ip": rec.client.ip, "port": rec.client.port},
            "destination": {"ip": rec.server.ip, "port": rec.server.port},
            "network": {
                "transport": "tcp",
                "protocol": rec.protocol.as_str(),
                "type": ip_type(rec.client.ip),
            },
            "related": {"ip": related_ips(rec)},
            "mailsift": {"session": {"id": rec.id, "uid": uid}},
        });
        let common = match common {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        SessionContext { uid, common }
    }

    /// An event: the common fields merged with `specific` (whose values win).
    fn event(&self, ts: Timestamp, specific: Value) -> Value {
        let mut out = Value::Object(self.common.clone());
        merge(&mut out, json!({ "@timestamp": ts.to_string() }));
        merge(&mut out, specific);
        prune(&mut out);
        out
    }
}

fn ip_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

fn related_ips(rec: &SessionRecord) -> Vec<String> {
    let mut ips = vec![rec.client.ip.to_string()];
    if rec.server.ip != rec.client.ip {
        ips.push(rec.server.ip.to_string());
    }
    ips
}

/// Merges `from` into `into`: objects key by key (recursively), anything else replaced.
fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Removes nulls, empty arrays and objects left empty by that, so absent means unknown.
fn prune(v: &mut Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(items) => {
            items.retain_mut(prune);
            !items.is_empty()
        }
        Value::Object(map) => {
            map.retain(|_, v| prune(v));
            !map.is_empty()
        }
        _ => true,
    }
}

fn session_event(rec: &SessionRecord, ctx: &SessionContext) -> Value {
    let tls = rec.tls.as_ref().map(|t| {
        let (protocol, version) = t
            .handshake
            .version
            .map(|v| split_tls_version(v.name()))
            .unwrap_or((None, None));
        json!({
            "established": t.handshake.established,
            "resumed": t.handshake.resumed,
            "version_protocol": protocol,
            "version": version,
            "cipher": t.handshake.cipher,
            "next_protocol": t.handshake.alpn,
            "client": {"server_name": t.handshake.sni, "ja3": t.handshake.ja3_hash},
            "server": {"ja3s": t.handshake.ja3s_hash},
        })
    });
    let user = rec.pop3.as_ref().and_then(|p| p.user.clone()).or_else(|| {
        rec.credentials
            .iter()
            .rev()
            .find(|c| c.success == Some(true) && !c.is_proxy_login())
            .and_then(|c| c.username.clone())
    });
    let anomalies: Vec<&str> = rec.anomalies.iter().map(|a| a.kind.as_str()).collect();
    ctx.event(
        rec.first_seen,
        json!({
            "event": {
                "kind": "event",
                "category": ["network", "email"],
                "type": ["connection", "protocol"],
                "dataset": "mailsift.session",
                "module": "mailsift",
                "start": rec.first_seen.to_string(),
                "end": rec.last_seen.to_string(),
                "duration": rec.last_seen.nanos_since(rec.first_seen),
            },
            "source": {"packets": rec.packets.client, "bytes": rec.bytes.client},
            "destination": {"packets": rec.packets.server, "bytes": rec.bytes.server},
            "network": {
                "packets": rec.packets.client.saturating_add(rec.packets.server),
                "bytes": rec.bytes.client.saturating_add(rec.bytes.server),
            },
            "tls": tls,
            "user": {"name": user},
            "related": {"user": user.into_iter().collect::<Vec<_>>()},
            "mailsift": {"session": {
                "state": rec.state.as_str(),
                "handshake_seen": rec.handshake_seen,
                "tls_mode": rec.tls.as_ref().map(|t| match t.mode {
                    TlsMode::Starttls => "starttls",
                    TlsMode::Implicit => "implicit",
                }),
                "detected_by_content": rec.detected_by_content,
                "tunnel": rec.tunnel,
                "tls_decrypted": rec.tls.as_ref().map(|t| t.decrypted),
                "tls_decryption": rec.tls.as_ref().and_then(|t| t.decryption.as_ref()).map(|d| d.status),
                "missing_bytes": rec.missing_bytes,
                "helo": rec.smtp.as_ref().and_then(|s| s.helo.clone()),
                "messages": rec.messages.len(),
                "credentials": rec.credentials.len(),
                "findings": rec.findings.len(),
                "anomalies": anomalies,
                "events_dropped": (rec.events_dropped > 0).then_some(rec.events_dropped),
            }},
        }),
    )
}

/// `TLS 1.2` as (`tls`, `1.2`); `SSL 3.0` as (`ssl`, `3.0`).
fn split_tls_version(name: &str) -> (Option<String>, Option<String>) {
    match name.split_once(' ') {
        Some((p, v)) if p == "TLS" || p == "SSL" => {
            (Some(p.to_ascii_lowercase()), Some(v.to_string()))
        }
        _ => (None, None),
    }
}

fn addresses(list: &[AddressRecord]) -> Vec<&str> {
    list.iter().filter_map(|a| a.address.as_deref()).collect()
}

fn attachment(a: &AttachmentRecord) -> Value {
    let extension = a
        .filename
        .as_deref()
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, ext)| ext)
        .filter(|ext| !ext.is_empty() && !ext.contains(['/', '\\']));
    json!({"file": {
        "name": a.filename,
        "extension": extension,
        "mime_type": a.content_type,
        "size": a.size,
        "hash": {
            "md5": non_empty(&a.md5),
            "sha1": non_empty(&a.sha1),
            "sha256": non_empty(&a.sha256),
        },
    }})
}

/// Hashes are empty strings when hashing was off; those are left out.
fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn message_event(rec: &SessionRecord, ctx: &SessionContext, m: &MessageRecord) -> Value {
    let h = m.mime.as_ref().map(|mime| &mime.header);
    let mut hashes: Vec<&str> = non_empty(&m.sha256).into_iter().collect();
    let mut attachments = Vec::new();
    let mut fuids = Vec::new();
    if let Some(mime) = &m.mime {
        for (i, a) in mime.attachments.iter().enumerate() {
            attachments.push(attachment(a));
            fuids.push(file_uid(rec.id, m.index, i));
            hashes.extend(non_empty(&a.sha256));
        }
    }
    // Mail a POP3 client retrieves has been delivered to the mailbox it reads: inbound.
    // What SMTP carries could be going either way; without the site's domains it is unknown.
    let direction = match rec.protocol {
        Protocol::Pop3 => Some("inbound"),
        Protocol::Smtp => None,
    };
    let source = match m.source {
        MessageSource::Data => "data",
        MessageSource::Bdat => "bdat",
        MessageSource::Retr => "retr",
        MessageSource::Top => "top",
    };
    ctx.event(
        m.first_seen,
        json!({
            "event": {
                "kind": "event",
                "category": ["email"],
                "type": ["info"],
                "dataset": "mailsift.message",
                "module": "mailsift",
                "start": m.first_seen.to_string(),
                "end": m.last_seen.to_string(),
            },
            "email": {
                "local_id": format!("{}-{}", ctx.uid, m.index),
                "direction": direction,
                "subject": h.and_then(|h| h.subject.clone()),
                "message_id": h.and_then(|h| h.message_id.clone()),
                "from": {"address": h.map(|h| addresses(&h.from))},
                "sender": {"address": h.and_then(|h| addresses(&h.sender).first().copied())},
                "to": {"address": h.map(|h| addresses(&h.to))},
                "cc": {"address": h.map(|h| addresses(&h.cc))},
                "bcc": {"address": h.map(|h| addresses(&h.bcc))},
                "reply_to": {"address": h.map(|h| addresses(&h.reply_to))},
                "origination_timestamp": h.and_then(|h| h.date.clone()),
                "content_type": h.and_then(|h| h.content_type.clone()),
                "x_mailer": h.and_then(|h| h.x_mailer.clone().or_else(|| h.user_agent.clone())),
                "attachments": attachments,
            },
            "related": {"hash": hashes},
            "mailsift": {"message": {
                "index": m.index,
                "source": source,
                "size": m.size,
                "sha256": non_empty(&m.sha256),
                "complete": m.complete,
                "missing_bytes": (m.missing_bytes > 0).then_some(m.missing_bytes),
                "reply_code": m.reply.as_ref().map(|r| r.code),
                "reply_text": m.reply.as_ref().map(|r| &r.text),
                "mail_from": m.mail_from,
                "rcpt_to": m.rcpt_to,
                "pop3_number": m.number,
                "uidl": m.uidl,
                "subject_raw": h.and_then(|h| h.subject_raw.clone()),
                "in_reply_to": h.map(|h| &h.in_reply_to),
                "x_originating_ip": h.and_then(|h| h.x_originating_ip.clone()),
                "urls": m.mime.as_ref().map(|mime| &mime.urls),
                "attachment_fuids": fuids,
            }},
        }),
    )
}

fn credential_event(ctx: &SessionContext, c: &Credential) -> Value {
    let outcome = match c.success {
        Some(true) => "success",
        Some(false) => "failure",
        None => "unknown",
    };
    let mut detail = serde_json::to_value(c).unwrap_or(Value::Null);
    merge(
        &mut detail,
        json!({ "secret": secret_text(c), "ts": Value::Null }),
    );
    ctx.event(
        c.ts,
        json!({
            "event": {
                "kind": "event",
                "category": ["authentication"],
                "type": ["info"],
                "dataset": "mailsift.credential",
                "module": "mailsift",
                "outcome": outcome,
                "action": "login",
            },
            "user": {"name": c.username, "domain": c.details.domain},
            "related": {"user": c.username.iter().collect::<Vec<_>>()},
            "mailsift": {"credential": detail},
        }),
    )
}

fn finding_fields(f: &Finding) -> Value {
    json!({
        "event": {
            "kind": "alert",
            "category": ["network"],
            "type": ["info"],
            "dataset": "mailsift.finding",
            "module": "mailsift",
            "severity": severity_number(f.severity),
        },
        "rule": {"id": f.rule, "name": rule_name(&f.rule), "ruleset": "mailsift"},
        "message": f.message,
        "mailsift": {"finding": {"severity": f.severity.as_str(), "details": f.details}},
    })
}

fn finding_event(ctx: &SessionContext, f: &Finding) -> Value {
    ctx.event(f.ts, finding_fields(f))
}

fn run_finding_event(f: &RunFinding) -> Value {
    let mut out = json!({
        "@timestamp": f.finding.ts.to_string(),
        "ecs": {"version": ECS_VERSION},
        "source": {"ip": f.client},
        "related": {"ip": f.client.map(|ip| vec![ip])},
        "mailsift": {"finding": {
            "scope": "run",
            "sessions": f.sessions,
            "session_uids": f.sessions.iter().map(|&id| session_uid(id)).collect::<Vec<_>>(),
        }},
    });
    merge(&mut out, finding_fields(&f.finding));
    prune(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::MimeSummary;
    use crate::session::{CredentialDetails, Endpoint, Severity};

    fn rec() -> SessionRecord {
        let mut r = SessionRecord::new(
            24,
            Protocol::Smtp,
            Endpoint {
                ip: "192.0.2.1".parse().unwrap(),
                port: 40000,
            },
            Endpoint {
                ip: "192.0.2.2".parse().unwrap(),
                port: 25,
            },
            Timestamp::from_parts(1_700_000_000, 0),
        );
        r.last_seen = Timestamp::from_parts(1_700_000_002, 500_000_000);
        let mut mime = MimeSummary::default();
        mime.header.subject = Some("Quarterly <report>".into());
        mime.header.from = vec![AddressRecord {
            name: Some("Alice".into()),
            address: Some("alice@example.com".into()),
            group: None,
        }];
        mime.attachments.push(AttachmentRecord {
            path: "2".into(),
            filename: Some("invoice.pdf".into()),
            content_type: "application/pdf".into(),
            disposition: Some("attachment".into()),
            size: 10,
            declared_size: None,
            encoded_size: 16,
            md5: "m".into(),
            sha1: "s1".into(),
            sha256: "s256".into(),
            content_id: None,
            complete: true,
        });
        r.messages.push(MessageRecord {
            index: 0,
            source: MessageSource::Data,
            first_seen: Timestamp::from_parts(1_700_000_001, 0),
            last_seen: Timestamp::from_parts(1_700_000_001, 0),
            mail_from: Some("alice@example.com".into()),
            rcpt_to: Some(vec!["bob@example.com".into()]),
            number: None,
            uidl: None,
            missing_bytes: 0,
            reply: None,
            size: 100,
            sha256: "abc".into(),
            complete: true,
            mime: Some(mime),
        });
        r.credentials.push(Credential {
            ts: Timestamp::from_parts(1_700_000_000, 5),
            mechanism: "PLAIN".into(),
            username: Some("alice".into()),
            password: Some("hunter22".into()),
            success: Some(false),
            encrypted: false,
            details: CredentialDetails::default(),
        });
        r.findings.push(Finding {
            rule: "cleartext-password".into(),
            severity: Severity::High,
            message: "m".into(),
            ts: Timestamp::from_parts(1_700_000_000, 5),
            details: None,
        });
        r
    }

    #[test]
    fn a_session_becomes_typed_events_sharing_its_uid() {
        let events = session_events(&rec());
        assert_eq!(events.len(), 4);
        for e in &events {
            assert_eq!(e["ecs"]["version"], ECS_VERSION);
            assert_eq!(e["mailsift"]["session"]["uid"], "CO");
            assert_eq!(e["source"]["ip"], "192.0.2.1");
            assert_eq!(e["destination"]["port"], 25);
            assert_eq!(e["network"]["protocol"], "smtp");
        }
        let s = &events[0];
        assert_eq!(s["event"]["kind"], "event");
        assert_eq!(s["event"]["category"], json!(["network", "email"]));
        assert_eq!(s["event"]["duration"], 2_500_000_000u64);
        assert_eq!(s["@timestamp"], "2023-11-14T22:13:20.000000Z");
        assert!(s.get("tls").is_none(), "no TLS, no tls object: {s}");

        let m = &events[1];
        assert_eq!(m["email"]["subject"], "Quarterly <report>");
        assert_eq!(m["email"]["from"]["address"], json!(["alice@example.com"]));
        assert!(m["email"].get("to").is_none(), "empty lists are left out");
        assert!(m["email"].get("direction").is_none(), "SMTP: unknown");
        assert_eq!(m["email"]["local_id"], "CO-0");
        let a = &m["email"]["attachments"][0]["file"];
        assert_eq!(a["name"], "invoice.pdf");
        assert_eq!(a["extension"], "pdf");
        assert_eq!(a["hash"]["sha256"], "s256");
        assert_eq!(
            m["mailsift"]["message"]["rcpt_to"],
            json!(["bob@example.com"])
        );
        assert_eq!(m["related"]["hash"], json!(["abc", "s256"]));

        let c = &events[2];
        assert_eq!(c["event"]["category"], json!(["authentication"]));
        assert_eq!(c["event"]["outcome"], "failure");
        assert_eq!(c["user"]["name"], "alice");
        assert_eq!(c["mailsift"]["credential"]["mechanism"], "PLAIN");
        assert_eq!(c["mailsift"]["credential"]["secret"], "hunter22");
        assert!(c["mailsift"]["credential"].get("ts").is_none());

        let f = &events[3];
        assert_eq!(f["event"]["kind"], "alert");
        assert_eq!(f["event"]["severity"], 4);
        assert_eq!(f["rule"]["id"], "cleartext-password");
        assert_eq!(f["rule"]["name"], "Cleartext password");
    }

    #[test]
    fn writer_emits_one_object_per_line_and_run_findings_last() {
        let mut w = EcsWriter::new(Vec::new());
        w.session(&rec()).unwrap();
        w.run_findings(&[RunFinding {
            finding: Finding {
                rule: "brute-force".into(),
                severity: Severity::Medium,
                message: "5 failed logins".into(),
                ts: Timestamp(0),
                details: None,
            },
            client: Some("192.0.2.1".parse().unwrap()),
            sessions: vec![24, 62],
        }])
        .unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 5);
        let run = &lines[4];
        assert_eq!(run["rule"]["id"], "brute-force");
        assert_eq!(run["event"]["severity"], 3);
        assert_eq!(run["source"]["ip"], "192.0.2.1");
        assert_eq!(
            run["mailsift"]["finding"]["session_uids"],
            json!(["CO", "C10"])
        );
    }

    #[test]
    fn pop3_retrievals_are_inbound() {
        let mut r = rec();
        r.protocol = Protocol::Pop3;
        let events = session_events(&r);
        assert_eq!(events[1]["email"]["direction"], "inbound");
        assert_eq!(events[1]["network"]["protocol"], "pop3");
    }

    #[test]
    fn tls_versions_split_into_protocol_and_number() {
        assert_eq!(
            split_tls_version("TLS 1.3"),
            (Some("tls".into()), Some("1.3".into()))
        );
        assert_eq!(split_tls_version("unknown"), (None, None));
    }
}
