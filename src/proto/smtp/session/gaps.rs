//! Gaps in either stream: held bytes ahead of a gap go first, then each mode decides what the
//! lost bytes cost (a command line, a reply, part of a message, a BDAT chunk).

use super::{ClientMode, OpenMessage, ServerMode, SmtpDissector, Step};
use crate::session::{Direction, EventKind, MessageSource, SessionRecord};
use crate::time::Timestamp;

impl SmtpDissector {
    /// A gap in the client stream, in order: held bytes ahead of it go first.
    pub(super) fn gap_client(&mut self, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        let core = &mut self.core;
        if matches!(core.client, ClientMode::Paused) || !core.client_hold.is_empty() {
            core.client_hold.push_gap(ts, len);
            return;
        }
        self.apply_client_gap(len, ts, rec);
    }

    pub(super) fn apply_client_gap(&mut self, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        let core = &mut self.core;
        core.commands_lost = true;
        if !matches!(core.client, ClientMode::Tls) {
            rec.push_event(ts, Direction::Client, EventKind::Gap { bytes: len });
        }
        if !self.client_lines.is_empty() {
            rec.anomaly(
                ts,
                Some(Direction::Client),
                "line_cut_by_gap",
                "a partial line before a gap was dropped",
            );
        }
        self.client_lines.clear();
        let mode = std::mem::replace(&mut core.client, ClientMode::Commands);
        core.client = match mode {
            ClientMode::Tls => {
                core.upgrade.lost(Direction::Client);
                if let Some(tls) = core.tls.as_mut() {
                    tls.on_gap(Direction::Client, len, ts, rec);
                }
                ClientMode::Tls
            }
            ClientMode::Stopped => ClientMode::Stopped,
            ClientMode::Paused => ClientMode::Paused,
            ClientMode::Commands | ClientMode::Resync => {
                core.next_uncertain = true;
                ClientMode::Resync
            }
            ClientMode::SaslLine => {
                // The lost line was a SASL response: its reply still comes.
                core.push_pending(Step::Auth, ts, false, None, rec);
                core.next_uncertain = true;
                ClientMode::Resync
            }
            ClientMode::Body(mut body) | ClientMode::BodyAfterGap(mut body) => {
                // The message goes on after the gap: its MIME walk resumes at the next boundary.
                body.message.gap(len, ts, &core.keep);
                body.lines_after_gap = 0;
                ClientMode::BodyAfterGap(body)
            }
            ClientMode::Chunk { remaining, last } => {
                core.bdat
                    .get_or_insert_with(|| OpenMessage::new(MessageSource::Bdat))
                    .gap(len.min(remaining), ts, &core.keep);
                if len < remaining {
                    ClientMode::Chunk {
                        remaining: remaining - len,
                        last,
                    }
                } else {
                    // The chunk ended inside the gap; whatever followed it is lost too.
                    core.chunk_done(last, ts, rec);
                    if len > remaining {
                        core.next_uncertain = true;
                        ClientMode::Resync
                    } else {
                        ClientMode::Commands
                    }
                }
            }
        };
    }

    /// A gap in the server stream, in order: held bytes ahead of it go first.
    pub(super) fn gap_server(&mut self, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        let core = &mut self.core;
        if core.server == ServerMode::Paused || !core.server_hold.is_empty() {
            core.server_hold.push_gap(ts, len);
            return;
        }
        self.apply_server_gap(len, ts, rec);
    }

    pub(super) fn apply_server_gap(&mut self, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        let core = &mut self.core;
        match core.server {
            ServerMode::Tls => {
                core.upgrade.lost(Direction::Server);
                if let Some(tls) = core.tls.as_mut() {
                    tls.on_gap(Direction::Server, len, ts, rec);
                }
            }
            ServerMode::Replies | ServerMode::Resync | ServerMode::Paused => {
                rec.push_event(ts, Direction::Server, EventKind::Gap { bytes: len });
                if !self.server_lines.is_empty() {
                    rec.anomaly(
                        ts,
                        Some(Direction::Server),
                        "line_cut_by_gap",
                        "a partial line before a gap was dropped",
                    );
                }
                self.server_lines.clear();
                if let Some(b) = core.reply.as_mut() {
                    b.cut_by_gap = true;
                }
                core.server = ServerMode::Resync;
                core.next_after_gap = true;
                if core.replies_parsed == 0 {
                    core.clean_start = false;
                }
            }
        }
    }
}
