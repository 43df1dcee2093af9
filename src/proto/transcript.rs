//! Line transcript: keeps each direction's lines verbatim, for protocols not dissected further.

use super::Dissector;
use super::line::{LineEnding, LineFramer};
use crate::limits::Limits;
use crate::session::{Direction, EventKind, PerDirection, SessionRecord};
use crate::time::Timestamp;

/// Records every line of both directions as `line` events.
#[derive(Debug)]
pub struct TranscriptDissector {
    framers: PerDirection<LineFramer>,
}

impl TranscriptDissector {
    /// A transcript dissector with the configured line cap.
    pub fn new(limits: &Limits) -> Self {
        TranscriptDissector {
            framers: PerDirection {
                client: LineFramer::new(limits.max_line_len).with_budget(limits.budget.clone()),
                server: LineFramer::new(limits.max_line_len).with_budget(limits.budget.clone()),
            },
        }
    }

    fn flush(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
        if let Some(line) = self.framers.get_mut(dir).flush() {
            let text = line.text().into_owned();
            rec.push_event(ts, dir, EventKind::Line { text });
        }
    }
}

impl Dissector for TranscriptDissector {
    fn on_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        let mut input = data;
        let framer = self.framers.get_mut(dir);
        while let Some(line) = framer.next_line(&mut input) {
            if line.overlong() {
                rec.anomaly(
                    ts,
                    Some(dir),
                    "line_too_long",
                    format!("line of {} bytes cut", line.wire_len()),
                );
            }
            if line.ending == LineEnding::Lf {
                rec.anomaly(ts, Some(dir), "bare_lf", "line ended by LF without CR");
            }
            let text = line.text().into_owned();
            rec.push_event(ts, dir, EventKind::Line { text });
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        self.flush(dir, ts, rec);
        rec.push_event(ts, dir, EventKind::Gap { bytes: len });
    }

    fn on_end(&mut self, ts: Timestamp, rec: &mut SessionRecord) {
        self.flush(Direction::Client, ts, rec);
        self.flush(Direction::Server, ts, rec);
    }
}
