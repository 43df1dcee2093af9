//! Invariants every session record must satisfy, whatever the input, and a JSON comparison that
//! names the first difference (so a failed equivalence check says where to look).

use mailsift::limits::Limits;
use mailsift::session::{MAX_ANOMALY_KINDS, MessageBlob, SessionRecord};
use serde_json::Value;

/// Checks the bounds of a finished record and returns its JSON (which must serialise).
///
/// `input_len` is the number of stream bytes that built it: nothing countable can outnumber them.
pub fn record(rec: &SessionRecord, limits: &Limits, input_len: usize) -> Value {
    assert!(
        rec.events.len() <= limits.max_events_per_session,
        "{} events kept, limit {}",
        rec.events.len(),
        limits.max_events_per_session
    );
    assert!(
        rec.anomalies.len() <= MAX_ANOMALY_KINDS,
        "{} anomaly kinds kept",
        rec.anomalies.len()
    );
    assert!(
        rec.credentials.len() <= input_len,
        "{} credentials from {input_len} bytes",
        rec.credentials.len()
    );
    assert!(
        rec.messages.len() <= input_len,
        "{} messages from {input_len} bytes",
        rec.messages.len()
    );
    for a in &rec.anomalies {
        assert!(a.count >= 1, "anomaly {} with count 0", a.kind);
        assert!(!a.kind.is_empty(), "anomaly without a kind");
    }
    for mime in rec.messages.iter().filter_map(|m| m.mime.as_ref()) {
        crate::mime::check_summary(mime, &limits.mime, input_len);
    }
    if let Some(tls) = &rec.tls {
        assert!(
            tls.handshake.alerts.len() <= mailsift::proto::tls::MAX_ALERTS,
            "{} alerts kept",
            tls.handshake.alerts.len()
        );
    }
    for b in &rec.blobs {
        blob(b, limits, input_len);
    }
    let text = serde_json::to_string(rec).expect("a session record always serialises");
    serde_json::from_str(&text).expect("a session record serialises to valid JSON")
}

/// Checks one message blob handed on for extraction (its spooled file) and returns its size.
pub fn blob(blob: &MessageBlob, _limits: &Limits, input_len: usize) -> u64 {
    let len = std::fs::metadata(&blob.files.eml).map_or(0, |m| m.len());
    assert!(len <= input_len as u64, "message blob of {len} bytes");
    len
}

/// A spool folder for this process's extraction runs.
pub fn spool() -> std::sync::Arc<mailsift::mail::Spool> {
    static SPOOL: std::sync::OnceLock<std::sync::Arc<mailsift::mail::Spool>> =
        std::sync::OnceLock::new();
    SPOOL
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("mailsift-fuzz-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("spool folder");
            std::sync::Arc::new(mailsift::mail::Spool::new(dir))
        })
        .clone()
}

/// Removes a blob's spooled files.
pub fn discard(blob: &MessageBlob) {
    let _ = std::fs::remove_file(&blob.files.eml);
    for a in &blob.files.attachments {
        let _ = std::fs::remove_file(&a.file);
    }
}

/// The path and values of the first difference between two JSON values, or `None` if equal.
pub fn first_difference(a: &Value, b: &Value) -> Option<String> {
    fn walk(a: &Value, b: &Value, path: &mut String) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, va) in x {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    let found = match y.get(k) {
                        Some(vb) => walk(va, vb, path),
                        None => Some(format!("{path}: only in the first")),
                    };
                    path.truncate(len);
                    if found.is_some() {
                        return found;
                    }
                }
                y.keys()
                    .find(|k| !x.contains_key(*k))
                    .map(|k| format!("{path}.{k}: only in the second"))
            }
            (Value::Array(x), Value::Array(y)) => {
                for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    let found = walk(va, vb, path);
                    path.truncate(len);
                    if found.is_some() {
                        return found;
                    }
                }
                (x.len() != y.len()).then(|| format!("{path}: {} vs {} elements", x.len(), y.len()))
            }
            _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
        }
    }
    walk(a, b, &mut String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_first_difference() {
        let a = json!({"events": [{"text": "a"}, {"text": "b"}], "n": 1});
        let b = json!({"events": [{"text": "a"}, {"text": "c"}], "n": 1});
        assert_eq!(
            first_difference(&a, &b).as_deref(),
            Some(".events[1].text: \"b\" vs \"c\"")
        );
        assert_eq!(first_difference(&a, &a), None);
    }
}
