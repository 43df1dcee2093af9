//! STLS: the switch to TLS, what each side sends first after it, and the TLS layer's bytes.

use super::*;

impl Pop3Dissector {
    pub(super) fn start_tls(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
        if self.tls.is_none() {
            let mut observer = TlsObserver::start(TlsMode::Starttls, dir, ts, rec);
            if let Some(keys) = self.limits.keys.clone() {
                let inner = crate::proto::inner_dissector(Protocol::Pop3, true, &self.limits);
                observer = observer.decrypting(keys, inner);
            }
            self.tls = Some(observer);
        }
        self.client_tls = true;
        self.stls_wait = false;
        self.server_phase = ServerPhase::Tls;
    }

    /// Whether `dir`'s first bytes after an accepted STLS are clear text (then read as POP3
    /// again).
    pub(super) fn clear_after_stls(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> bool {
        let detail = match dir {
            Direction::Client => {
                "client bytes after the STLS +OK are not TLS (a stripped or broken TLS layer, \
                 or commands injected before the handshake); read as clear text"
            }
            Direction::Server => "server bytes after the STLS +OK are not TLS; read as clear text",
        };
        self.upgrade
            .goes_clear(dir, data, ts, rec, ("stls_plaintext", detail))
    }

    pub(super) fn tls_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        if let Some(observer) = self.tls.as_mut() {
            observer.on_data(dir, data, ts, rec);
        }
    }

    pub(super) fn tls_gap(
        &mut self,
        dir: Direction,
        len: u64,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        self.upgrade.lost(dir);
        match self.tls.as_mut() {
            Some(observer) => observer.on_gap(dir, len, ts, rec),
            None => rec.push_event(ts, dir, EventKind::Gap { bytes: len }),
        }
    }
}
