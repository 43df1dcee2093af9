//! The TLS record layer, one direction at a time, as a streaming parser.
//!
//! Records may be split across TCP segments at any byte. Only handshake records sent before
//! the direction turned encrypted are buffered (one handshake message at a time, at most
//! [`MAX_HANDSHAKE_MESSAGE`] bytes, and [`MAX_HANDSHAKE_BYTES`] over the direction's life);
//! application data and everything encrypted is only counted, never copied.

/// Largest handshake message reassembled; larger ones are skipped and reported.
pub const MAX_HANDSHAKE_MESSAGE: usize = 64 << 10;
/// Most clear-text handshake bytes read per direction; beyond it the handshake is only counted.
pub const MAX_HANDSHAKE_BYTES: usize = 256 << 10;
/// Largest record body allowed (TLSCiphertext: 2^14 plus 2048 bytes of expansion).
const MAX_RECORD_BODY: usize = (1 << 14) + 2048;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const HEARTBEAT: u8 = 24;

/// Something the record layer found, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordEvent<'a> {
    /// A complete clear-text handshake message.
    Handshake {
        /// Handshake message type.
        msg_type: u8,
        /// Message body (after the four-byte header).
        body: &'a [u8],
    },
    /// An SSLv2-format ClientHello record (the body after its two-byte header).
    Sslv2ClientHello {
        /// The record body, starting with msg_type 1.
        body: &'a [u8],
    },
    /// A change_cipher_spec record: this direction is encrypted from now on (TLS 1.2 and older).
    ChangeCipherSpec,
    /// An alert sent in clear.
    Alert {
        /// Alert level byte.
        level: u8,
        /// Alert description byte.
        description: u8,
    },
    /// An application_data record began.
    ApplicationData {
        /// Its body length.
        len: usize,
    },
    /// The direction's first bytes are not TLS; nothing more is parsed.
    NotTls {
        /// The bytes look like a text protocol (printable ASCII and line breaks).
        text: bool,
        /// What was seen, for a human.
        detail: String,
    },
    /// Something is wrong with the stream; `kind` is an anomaly kind.
    Problem {
        /// Stable snake_case anomaly kind.
        kind: &'static str,
        /// What happened, for a human.
        detail: String,
    },
}

/// What the consumer wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep reading handshake messages in clear.
    Continue,
    /// Everything after this message is encrypted (a TLS 1.3 ServerHello was just read).
    Encrypted,
    /// TLS 1.3 was chosen by a HelloRetryRequest: a change_cipher_spec that follows is the
    /// compatibility dummy of RFC 8446 appendix D.4 and the next ServerHello is still clear.
    Tls13Retry,
}

/// Where the reader is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a record header.
    Header,
    /// Inside an SSLv2-format record of `remaining` more bytes (buffered).
    Sslv2Body { remaining: usize },
    /// Inside a record of type `content` with `remaining` bytes left.
    Body { content: u8, remaining: usize },
    /// The stream is not (or no longer) parseable; bytes are only counted.
    Stopped,
}

/// Reassembles handshake messages from the handshake records of one direction.
#[derive(Debug, Default)]
struct HandshakeAssembler {
    /// Bytes of the message being assembled (header included).
    buf: Vec<u8>,
    /// Bytes still to discard from an oversized or damaged message.
    skip: usize,
    /// Clear-text handshake bytes seen so far.
    total: usize,
    /// Message boundaries were lost or a limit was hit; handshake bytes are only counted.
    disabled: bool,
}

/// True when every byte is printable ASCII or a tab or line break (a text protocol line).
fn is_text(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| matches!(b, b' '..=b'~' | b'\r' | b'\n' | b'\t'))
}

/// Length of the handshake message starting at `bytes` (header included), if its header is there.
fn message_len(bytes: &[u8]) -> Option<usize> {
    let h = bytes.get(..4)?;
    Some(4 + (usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3])))
}

impl HandshakeAssembler {
    /// Feeds handshake-record bytes; emits each complete message. Returns `After::Encrypted`
    /// when the consumer asked to stop (the rest of the input is then not handshake data).
    fn push(&mut self, mut data: &[u8], sink: &mut dyn FnMut(RecordEvent<'_>) -> After) -> After {
        if self.disabled {
            return After::Continue;
        }
        let skipped = self.skip.min(data.len());
        self.skip -= skipped;
        data = &data[skipped..];
        if data.is_empty() {
            return After::Continue;
        }
        self.total += data.len();
        if self.total > MAX_HANDSHAKE_BYTES {
            self.disabled = true;
            self.buf = Vec::new();
            sink(RecordEvent::Problem {
                kind: "tls_handshake_limit",
                detail: format!(
                    "more than {MAX_HANDSHAKE_BYTES} bytes of clear-text handshake; the rest is only counted"
                ),
            });
            return After::Continue;
        }
        if self.buf.is_empty() {
            // Fast path: messages wholly inside this input are read in place.
            let (consumed, after) = self.drain_messages(data, sink);
            if after != After::Encrypted {
                self.buf
                    .extend_from_slice(data.get(consumed..).unwrap_or_default());
            }
            return after;
        }
        self.buf.extend_from_slice(data);
        let mut buf = std::mem::take(&mut self.buf);
        let (consumed, after) = self.drain_messages(&buf, sink);
        if after != After::Encrypted {
            // Keep the incomplete tail (and the allocation) for the next input.
            buf.drain(..consumed.min(buf.len()));
            self.buf = buf;
        }
        after
    }

    /// Emits every complete message at the start of `bytes`; returns how many bytes they took.
    fn drain_messages(
        &mut self,
        bytes: &[u8],
        sink: &mut dyn FnMut(RecordEvent<'_>) -> After,
    ) -> (usize, After) {
        let mut at = 0;
        let mut outcome = After::Continue;
        while let Some(len) = message_len(&bytes[at..]) {
            if len - 4 > MAX_HANDSHAKE_MESSAGE {
                // Skip the oversized message, in this input and beyond it.
                sink(RecordEvent::Problem {
                    kind: "tls_handshake_too_large",
                    detail: format!(
                        "handshake message of type {} declares {} bytes (limit {MAX_HANDSHAKE_MESSAGE}); skipped",
                        bytes[at],
                        len - 4
                    ),
                });
                let available = bytes.len() - at;
                if len <= available {
                    at += len;
                    continue;
                }
                self.skip = len - available;
                return (bytes.len(), outcome);
            }
            let Some(msg) = bytes.get(at..at + len) else {
                break;
            };
            at += len;
            match sink(RecordEvent::Handshake {
                msg_type: msg[0],
                body: &msg[4..],
            }) {
                After::Encrypted => return (at, After::Encrypted),
                After::Tls13Retry => outcome = After::Tls13Retry,
                After::Continue => {}
            }
        }
        (at, outcome)
    }

    /// `len` handshake bytes were never captured.
    fn gap(&mut self, len: usize) -> Option<RecordEvent<'static>> {
        if self.disabled {
            return None;
        }
        if self.skip > 0 {
            if len <= self.skip {
                self.skip -= len;
                return None;
            }
        } else if let Some(msg_len) = message_len(&self.buf)
            && self.buf.len() + len <= msg_len
        {
            let lost = self.buf[0];
            self.skip = msg_len - self.buf.len() - len;
            self.buf.clear();
            return Some(RecordEvent::Problem {
                kind: "tls_handshake_incomplete",
                detail: format!(
                    "handshake message of type {lost} lost bytes to a capture gap; skipped"
                ),
            });
        }
        self.disabled = true;
        self.buf = Vec::new();
        Some(RecordEvent::Problem {
            kind: "tls_handshake_desync",
            detail: "a capture gap hid handshake message boundaries; later handshake bytes are only counted".into(),
        })
    }
}

/// The record layer of one direction.
#[derive(Debug)]
pub struct RecordReader {
    /// Whether this is the client's direction (only a client may send an SSLv2 hello).
    from_client: bool,
    state: State,
    header: [u8; 5],
    header_len: usize,
    /// Records completed so far.
    records: u64,
    /// change_cipher_spec seen (or TLS 1.3 ServerHello): handshake and alerts are opaque.
    encrypted: bool,
    /// This direction speaks TLS 1.3, where change_cipher_spec does not start encryption.
    ccs_is_dummy: bool,
    /// Partial alert (level byte) waiting for its description.
    alert_level: Option<u8>,
    handshake: HandshakeAssembler,
}

impl RecordReader {
    /// A reader for the client's (`from_client`) or server's stream.
    pub fn new(from_client: bool) -> Self {
        RecordReader {
            from_client,
            state: State::Header,
            header: [0; 5],
            header_len: 0,
            records: 0,
            encrypted: false,
            ccs_is_dummy: false,
            alert_level: None,
            handshake: HandshakeAssembler::default(),
        }
    }

    /// True once the stream was given up (not TLS, damaged, or desynchronised by a gap).
    pub fn stopped(&self) -> bool {
        self.state == State::Stopped
    }

    /// True once this direction switched to encrypted records.
    pub fn encrypted(&self) -> bool {
        self.encrypted
    }

    /// Bytes of an incomplete handshake message still buffered.
    pub fn pending_handshake_bytes(&self) -> usize {
        self.handshake.buf.len()
    }

    /// Stops parsing with a problem report.
    fn stop(
        &mut self,
        kind: &'static str,
        detail: String,
        sink: &mut dyn FnMut(RecordEvent<'_>) -> After,
    ) {
        self.state = State::Stopped;
        self.handshake = HandshakeAssembler::default();
        sink(RecordEvent::Problem { kind, detail });
    }

    /// Reads in-order bytes of this direction.
    pub fn feed(&mut self, data: &[u8], sink: &mut dyn FnMut(RecordEvent<'_>) -> After) {
        let mut at = 0;
        while at < data.len() {
            match self.state {
                State::Stopped => return,
                State::Header => {
                    let byte = data[at];
                    at += 1;
                    self.header[self.header_len] = byte;
                    self.header_len += 1;
                    if let Err(reason) = self.check_header_byte() {
                        // Only the header bytes: what follows depends on how the stream was
                        // segmented, and the record must not.
                        let seen = self.header[..self.header_len].to_vec();
                        let shown = seen.escape_ascii().to_string();
                        if self.records == 0 {
                            self.state = State::Stopped;
                            self.handshake = HandshakeAssembler::default();
                            sink(RecordEvent::NotTls {
                                text: is_text(&seen),
                                detail: format!(
                                    "{reason}; stream begins {shown:?}; later bytes are only counted"
                                ),
                            });
                        } else {
                            let records = self.records;
                            self.stop(
                                "tls_malformed_record",
                                format!(
                                    "{reason} after {records} good records, at {shown:?}; later bytes are only counted"
                                ),
                                sink,
                            );
                        }
                        return;
                    }
                    self.maybe_start_body(sink);
                }
                State::Sslv2Body { remaining } => {
                    let n = remaining.min(data.len() - at);
                    self.handshake.buf.extend_from_slice(&data[at..at + n]);
                    at += n;
                    let remaining = remaining - n;
                    if remaining == 0 {
                        let body = std::mem::take(&mut self.handshake.buf);
                        sink(RecordEvent::Sslv2ClientHello { body: &body });
                        self.end_record();
                    } else {
                        self.state = State::Sslv2Body { remaining };
                    }
                }
                State::Body { content, remaining } => {
                    let n = remaining.min(data.len() - at);
                    let chunk = &data[at..at + n];
                    at += n;
                    self.body_bytes(content, chunk, sink);
                    if let State::Body { .. } = self.state {
                        let remaining = remaining - n;
                        if remaining == 0 {
                            self.end_record();
                        } else {
                            self.state = State::Body { content, remaining };
                        }
                    }
                }
            }
        }
    }

    /// Validates the header byte just added; an error says why the stream is not TLS.
    fn check_header_byte(&self) -> Result<(), &'static str> {
        let h = &self.header[..self.header_len];
        let sslv2 = self.records == 0 && self.from_client && h[0] & 0x80 != 0;
        match (h.len(), sslv2) {
            (1, false) if !(CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&h[0]) => {
                Err("first byte is not a TLS record type")
            }
            (2, false) if h[1] != 3 => Err("record version is not 3.x"),
            (3, false) if h[2] > 4 => Err("record version is not 3.0 to 3.4"),
            (5, false) => {
                let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
                if len > MAX_RECORD_BODY {
                    Err("record longer than TLS allows")
                } else {
                    Ok(())
                }
            }
            // SSLv2 header (2 bytes), then msg_type 1 and version 0.2 or 3.x.
            (3, true) if h[2] != 1 => Err("SSLv2-style header without a CLIENT-HELLO"),
            (4, true) if h[3] != 0 && h[3] != 3 => Err("SSLv2 CLIENT-HELLO with a bad version"),
            _ => Ok(()),
        }
    }

    /// Once a header is complete, switches to reading its body.
    fn maybe_start_body(&mut self, sink: &mut dyn FnMut(RecordEvent<'_>) -> After) {
        let h = self.header;
        let sslv2 = self.records == 0 && self.from_client && h[0] & 0x80 != 0;
        if sslv2 {
            if self.header_len < 4 {
                return;
            }
            let len = usize::from(h[0] & 0x7f) << 8 | usize::from(h[1]);
            if len < 9 {
                self.state = State::Stopped;
                sink(RecordEvent::NotTls {
                    text: false,
                    detail: format!(
                        "SSLv2-style record of {len} bytes is too short for a CLIENT-HELLO"
                    ),
                });
                return;
            }
            // The msg_type and version bytes already read belong to the body.
            self.handshake.buf.clear();
            self.handshake.buf.extend_from_slice(&h[2..4]);
            self.header_len = 0;
            self.state = State::Sslv2Body { remaining: len - 2 };
            return;
        }
        if self.header_len < 5 {
            return;
        }
        self.header_len = 0;
        let content = h[0];
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        if content == CHANGE_CIPHER_SPEC && !self.encrypted {
            if !self.ccs_is_dummy {
                self.encrypted = true;
                self.handshake = HandshakeAssembler::default();
            }
            sink(RecordEvent::ChangeCipherSpec);
        }
        if content == APPLICATION_DATA {
            sink(RecordEvent::ApplicationData { len });
        }
        self.state = State::Body {
            content,
            remaining: len,
        };
        if len == 0 {
            self.end_record();
        }
    }

    /// Handles bytes of a record body.
    fn body_bytes(
        &mut self,
        content: u8,
        chunk: &[u8],
        sink: &mut dyn FnMut(RecordEvent<'_>) -> After,
    ) {
        if self.encrypted {
            return;
        }
        match content {
            HANDSHAKE => match self.handshake.push(chunk, sink) {
                After::Encrypted => {
                    self.encrypted = true;
                    self.handshake = HandshakeAssembler::default();
                }
                After::Tls13Retry => self.ccs_is_dummy = true,
                After::Continue => {}
            },
            ALERT => {
                for &b in chunk {
                    match self.alert_level.take() {
                        None => self.alert_level = Some(b),
                        Some(level) => {
                            sink(RecordEvent::Alert {
                                level,
                                description: b,
                            });
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// A record ended.
    fn end_record(&mut self) {
        self.records += 1;
        self.alert_level = None;
        self.state = State::Header;
    }

    /// `len` bytes of this direction were never captured.
    pub fn gap(&mut self, len: u64, sink: &mut dyn FnMut(RecordEvent<'_>) -> After) {
        match self.state {
            State::Stopped => {}
            State::Body { content, remaining } if len <= remaining as u64 => {
                let len = len as usize;
                if content == HANDSHAKE
                    && !self.encrypted
                    && let Some(problem) = self.handshake.gap(len)
                {
                    sink(problem);
                }
                self.alert_level = None;
                if remaining == len {
                    self.end_record();
                } else {
                    self.state = State::Body {
                        content,
                        remaining: remaining - len,
                    };
                }
            }
            _ => self.stop(
                "tls_desync",
                format!(
                    "a capture gap of {len} bytes hid TLS record boundaries; later bytes are only counted"
                ),
                sink,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tls::testutil::{ClientHelloSpec, XorShift, handshake, record};

    /// An owned copy of a record event.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Hs(u8, Vec<u8>),
        V2(Vec<u8>),
        Ccs,
        Alert(u8, u8),
        App(usize),
        Problem(&'static str),
    }

    fn collect(reader: &mut RecordReader, chunks: &[&[u8]]) -> Vec<Ev> {
        let mut out = Vec::new();
        for c in chunks {
            reader.feed(c, &mut |e| {
                out.push(match e {
                    RecordEvent::Handshake { msg_type, body } => Ev::Hs(msg_type, body.to_vec()),
                    RecordEvent::Sslv2ClientHello { body } => Ev::V2(body.to_vec()),
                    RecordEvent::ChangeCipherSpec => Ev::Ccs,
                    RecordEvent::Alert { level, description } => Ev::Alert(level, description),
                    RecordEvent::ApplicationData { len } => Ev::App(len),
                    RecordEvent::Problem { kind, .. } => Ev::Problem(kind),
                    RecordEvent::NotTls { text: true, .. } => Ev::Problem("not_tls"),
                    RecordEvent::NotTls { text: false, .. } => Ev::Problem("not_tls_binary"),
                });
                After::Continue
            });
        }
        out
    }

    fn sample_stream() -> Vec<u8> {
        let ch = ClientHelloSpec::modern().message();
        // The ClientHello spans two records; a second record holds two small messages.
        let (a, b) = ch.split_at(40);
        let mut s = record(22, 0x0301, a);
        s.extend(record(22, 0x0303, b));
        let mut two = handshake(16, &[1, 2, 3]);
        two.extend(handshake(14, &[]));
        s.extend(record(22, 0x0303, &two));
        s.extend(record(21, 0x0303, &[1, 0]));
        s.extend(record(20, 0x0303, &[1]));
        s.extend(record(22, 0x0303, &[0xde; 40])); // encrypted Finished
        s.extend(record(23, 0x0303, &[0xee; 100]));
        s
    }

    fn expected_events() -> Vec<Ev> {
        vec![
            Ev::Hs(1, ClientHelloSpec::modern().body()),
            Ev::Hs(16, vec![1, 2, 3]),
            Ev::Hs(14, vec![]),
            Ev::Alert(1, 0),
            Ev::Ccs,
            Ev::App(100),
        ]
    }

    #[test]
    fn reads_records_and_reassembles_handshake_messages() {
        let mut r = RecordReader::new(true);
        assert_eq!(collect(&mut r, &[&sample_stream()]), expected_events());
        assert!(r.encrypted());
        assert!(!r.stopped());
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let s = sample_stream();
        for cut in 0..=s.len() {
            let mut r = RecordReader::new(true);
            let (a, b) = s.split_at(cut);
            assert_eq!(collect(&mut r, &[a, b]), expected_events(), "cut at {cut}");
        }
        let mut r = RecordReader::new(true);
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(collect(&mut r, &bytes), expected_events());
    }

    #[test]
    fn plain_text_after_starttls_is_not_tls() {
        let mut r = RecordReader::new(true);
        let ev = collect(&mut r, &[b"EHLO client.example\r\n"]);
        assert_eq!(ev, vec![Ev::Problem("not_tls")]);
        assert!(r.stopped());
        assert!(collect(&mut r, &[&sample_stream()]).is_empty());
    }

    #[test]
    fn a_bad_record_after_good_ones_is_malformed() {
        let mut s = record(23, 0x0303, &[1, 2, 3]);
        s.extend_from_slice(b"QUIT\r\n");
        let mut r = RecordReader::new(false);
        assert_eq!(
            collect(&mut r, &[&s]),
            vec![Ev::App(3), Ev::Problem("tls_malformed_record")]
        );
    }

    #[test]
    fn sslv2_client_hello_is_recognised_then_tls_records_follow() {
        let body = [
            1u8, 3, 1, 0, 3, 0, 0, 0, 16, 0x00, 0x00, 0x2f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
            13, 14, 15, 16,
        ];
        let mut s = vec![0x80 | (body.len() >> 8) as u8, body.len() as u8];
        s.extend_from_slice(&body);
        s.extend(record(21, 0x0301, &[2, 40]));
        for cut in 0..=s.len() {
            let mut r = RecordReader::new(true);
            let (a, b) = s.split_at(cut);
            assert_eq!(
                collect(&mut r, &[a, b]),
                vec![Ev::V2(body.to_vec()), Ev::Alert(2, 40)]
            );
        }
        // A server never sends an SSLv2 hello.
        let mut r = RecordReader::new(false);
        assert_eq!(collect(&mut r, &[&s]), vec![Ev::Problem("not_tls_binary")]);
    }

    #[test]
    fn oversized_handshake_messages_are_skipped() {
        // Declares 70 000 bytes: over the per-message cap.
        let mut big = vec![11u8, 0x01, 0x11, 0x70];
        big.extend(std::iter::repeat_n(0u8, 70_000));
        let mut s = Vec::new();
        for chunk in big.chunks(16_000) {
            s.extend(record(22, 0x0303, chunk));
        }
        s.extend(record(22, 0x0303, &handshake(14, &[])));
        let mut r = RecordReader::new(false);
        assert_eq!(
            collect(&mut r, &[&s]),
            vec![Ev::Problem("tls_handshake_too_large"), Ev::Hs(14, vec![])]
        );
        assert_eq!(r.pending_handshake_bytes(), 0);
    }

    #[test]
    fn handshake_byte_budget_is_enforced() {
        let msg = handshake(4, &[7u8; 60_000]);
        let mut s = Vec::new();
        for _ in 0..5 {
            for chunk in msg.chunks(16_000) {
                s.extend(record(22, 0x0303, chunk));
            }
        }
        let mut r = RecordReader::new(false);
        let ev = collect(&mut r, &[&s]);
        assert_eq!(ev.len(), 5);
        assert!(
            ev[..4]
                .iter()
                .all(|e| matches!(e, Ev::Hs(4, b) if b.len() == 60_000))
        );
        assert_eq!(ev[4], Ev::Problem("tls_handshake_limit"));
    }

    #[test]
    fn gap_inside_application_data_keeps_sync() {
        let mut s = record(23, 0x0303, &[0; 100]);
        s.extend(record(21, 0x0303, &[2, 80]));
        let mut r = RecordReader::new(false);
        let mut out = collect(&mut r, &[&s[..20]]);
        r.gap(50, &mut |_| After::Continue);
        out.extend(collect(&mut r, &[&s[70..]]));
        assert_eq!(out, vec![Ev::App(100), Ev::Alert(2, 80)]);
    }

    #[test]
    fn gap_inside_a_handshake_message_skips_only_that_message() {
        let big = handshake(11, &[9u8; 3000]);
        let mut s = record(22, 0x0303, &big);
        s.extend(record(22, 0x0303, &handshake(14, &[])));
        let mut r = RecordReader::new(false);
        let mut out = collect(&mut r, &[&s[..100]]);
        let mut problems = Vec::new();
        r.gap(500, &mut |e| {
            if let RecordEvent::Problem { kind, .. } = e {
                problems.push(kind);
            }
            After::Continue
        });
        out.extend(collect(&mut r, &[&s[600..]]));
        assert_eq!(problems, vec!["tls_handshake_incomplete"]);
        assert_eq!(out, vec![Ev::Hs(14, vec![])]);
    }

    #[test]
    fn gap_across_a_record_header_desyncs() {
        let s = record(23, 0x0303, &[0; 10]);
        let mut r = RecordReader::new(false);
        collect(&mut r, &[&s[..8]]);
        let mut kinds = Vec::new();
        r.gap(50, &mut |e| {
            if let RecordEvent::Problem { kind, .. } = e {
                kinds.push(kind);
            }
            After::Continue
        });
        assert_eq!(kinds, vec!["tls_desync"]);
        assert!(r.stopped());
    }

    #[test]
    fn consumer_can_switch_to_encrypted_mid_record() {
        let mut msgs = handshake(2, &[1, 2]);
        msgs.extend(handshake(8, &[3, 4])); // would be encrypted in TLS 1.3
        let s = record(22, 0x0303, &msgs);
        let mut r = RecordReader::new(false);
        let mut seen = Vec::new();
        r.feed(&s, &mut |e| {
            if let RecordEvent::Handshake { msg_type, .. } = e {
                seen.push(msg_type);
                return After::Encrypted;
            }
            After::Continue
        });
        assert_eq!(seen, vec![2]);
        assert!(r.encrypted());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..2000 {
            let len = (rng.next_u64() % 300) as usize;
            let mut data = rng.bytes(len);
            // Make most inputs start like TLS so the deeper states are reached.
            if round % 4 != 0 && data.len() > 5 {
                data[0] = 20 + (data[0] % 5);
                data[1] = 3;
                data[2] %= 5;
                data[3] = 0;
            }
            for from_client in [true, false] {
                let mut r = RecordReader::new(from_client);
                let split = if data.is_empty() {
                    0
                } else {
                    (rng.next_u64() as usize) % data.len()
                };
                collect(&mut r, &[&data[..split], &data[split..]]);
                r.gap(rng.next_u64() % 40, &mut |_| After::Continue);
                collect(&mut r, &[&data]);
            }
        }
    }
}
