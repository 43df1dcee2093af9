//! TLS observation: counts encrypted bytes and, from the handshake, records metadata.

use super::Dissector;
use crate::limits::Limits;
use crate::session::{Direction, EventKind, PerDirection, SessionRecord, TlsInfo, TlsMode};
use crate::time::Timestamp;
use serde::Serialize;

/// Handshake metadata seen on a TLS session (filled by the TLS issue).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsHandshake {}

/// A session that is TLS from its first byte (SMTPS 465, POP3S 995).
#[derive(Debug)]
pub struct ImplicitTlsDissector {
    started: bool,
}

impl ImplicitTlsDissector {
    /// A dissector for an implicit-TLS session.
    pub fn new(_limits: &Limits) -> Self {
        ImplicitTlsDissector { started: false }
    }
}

impl Dissector for ImplicitTlsDissector {
    fn on_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        if !self.started {
            self.started = true;
            rec.tls = Some(TlsInfo {
                mode: TlsMode::Implicit,
                started: ts,
                encrypted_bytes: PerDirection::default(),
                handshake: TlsHandshake::default(),
            });
            rec.push_event(
                ts,
                dir,
                EventKind::TlsStart {
                    mode: TlsMode::Implicit,
                },
            );
        }
        if let Some(tls) = rec.tls.as_mut() {
            *tls.encrypted_bytes.get_mut(dir) += data.len() as u64;
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        rec.push_event(ts, dir, EventKind::Gap { bytes: len });
    }

    fn on_end(&mut self, _ts: Timestamp, _rec: &mut SessionRecord) {}
}
