//! TLS observation: counts encrypted bytes and, from the handshake, records metadata.

use super::Dissector;
use crate::limits::Limits;
use crate::session::{Direction, EventKind, PerDirection, SessionRecord, TlsInfo, TlsMode};
use crate::time::Timestamp;
use serde::Serialize;

/// Handshake metadata seen on a TLS session (filled by the TLS issue).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsHandshake {}

/// Watches the TLS part of a session: everything after STARTTLS/STLS, or all of an
/// implicit-TLS session. Nothing it sees is dissected as SMTP or POP3.
#[derive(Debug, Default)]
pub struct TlsObserver {}

impl TlsObserver {
    /// Starts TLS on `rec` at `ts`: sets `rec.tls` and records the switch as an event from `dir`.
    pub fn start(mode: TlsMode, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) -> Self {
        rec.tls = Some(TlsInfo {
            mode,
            started: ts,
            encrypted_bytes: PerDirection::default(),
            handshake: TlsHandshake::default(),
        });
        rec.push_event(ts, dir, EventKind::TlsStart { mode });
        TlsObserver {}
    }

    /// Bytes of the TLS stream from `dir`.
    pub fn on_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        let _ = ts;
        if let Some(tls) = rec.tls.as_mut() {
            *tls.encrypted_bytes.get_mut(dir) += data.len() as u64;
        }
    }

    /// Missing bytes in the TLS stream from `dir`.
    pub fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        rec.push_event(ts, dir, EventKind::Gap { bytes: len });
    }
}

/// A session that is TLS from its first byte (SMTPS 465, POP3S 995).
#[derive(Debug, Default)]
pub struct ImplicitTlsDissector {
    observer: Option<TlsObserver>,
}

impl ImplicitTlsDissector {
    /// A dissector for an implicit-TLS session.
    pub fn new(_limits: &Limits) -> Self {
        ImplicitTlsDissector { observer: None }
    }
}

impl Dissector for ImplicitTlsDissector {
    fn on_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        self.observer
            .get_or_insert_with(|| TlsObserver::start(TlsMode::Implicit, dir, ts, rec))
            .on_data(dir, data, ts, rec);
    }

    fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        self.observer
            .get_or_insert_with(|| TlsObserver::start(TlsMode::Implicit, dir, ts, rec))
            .on_gap(dir, len, ts, rec);
    }

    fn on_end(&mut self, _ts: Timestamp, _rec: &mut SessionRecord) {}
}
