//! Protocol dissectors. They see ordered bytes per direction and stream events, never packets,
//! and they never print: everything they learn goes into the session record.

pub mod detect;
pub mod hashcat;
pub mod line;
pub mod pop3;
pub mod ports;
pub mod sasl;
pub mod smtp;
pub mod tls;
pub mod tunnel;

use crate::limits::Limits;
use crate::session::{Direction, Protocol, SessionRecord};
use crate::time::Timestamp;

/// A streaming parser for one TCP session.
///
/// Contract: the record it builds depends only on each direction's byte stream and gap
/// positions, not on how the two directions interleave in the capture, so reordered
/// captures give the same result. Hostile input never panics; it becomes an anomaly.
pub trait Dissector: Send {
    /// In-order bytes sent by `dir`; `ts` is the capture time of the packet that carried them.
    fn on_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord);

    /// `len` bytes sent by `dir` were never captured.
    fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord);

    /// `dir` sent FIN: no more bytes will come from that side.
    fn on_fin(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
        let _ = (dir, ts, rec);
    }

    /// The session is over (closed, expired, evicted or end of capture): flush what is pending.
    fn on_end(&mut self, ts: Timestamp, rec: &mut SessionRecord);
}

/// How the first bytes of a session are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Clear text from the start (ports 25, 587, 110 and user-mapped ports).
    Plain,
    /// TLS from the first byte (ports 465 and 995).
    ImplicitTls,
}

/// Builds the dissector for a new session.
pub fn new_dissector(protocol: Protocol, framing: Framing, limits: &Limits) -> Box<dyn Dissector> {
    match framing {
        Framing::ImplicitTls => Box::new(tls::ImplicitTlsDissector::new(protocol, limits)),
        Framing::Plain => match protocol {
            Protocol::Smtp => Box::new(smtp::SmtpDissector::new(limits)),
            Protocol::Pop3 => Box::new(pop3::Pop3Dissector::new(limits)),
        },
    }
}

/// The dissector for the plaintext of a decrypted TLS session: `after_upgrade` when TLS
/// followed STARTTLS or STLS (no greeting comes), else it starts at the greeting. It decrypts
/// nothing itself, so TLS inside TLS stays opaque.
pub fn inner_dissector(
    protocol: Protocol,
    after_upgrade: bool,
    limits: &Limits,
) -> Box<dyn Dissector> {
    let limits = Limits {
        keys: None,
        ..limits.clone()
    };
    match protocol {
        Protocol::Smtp => Box::new(smtp::SmtpDissector::inside_tls(&limits, after_upgrade)),
        Protocol::Pop3 => Box::new(pop3::Pop3Dissector::inside_tls(&limits, after_upgrade)),
    }
}
