//! The decrypting layer of a TLS session: with the session's secrets from a key log it opens
//! each direction's records and hands the application bytes, in order, to the SMTP or POP3
//! dissector inside, as if the session had stayed in clear text.
//!
//! Decrypting one direction needs both hellos (the client random to find the secrets, the
//! server's choice of version and suite), so bytes that arrive before both are known wait in a
//! bounded backlog; the result then does not depend on how the capture interleaved the two
//! directions. Nothing is made of a record that fails authentication: it is counted, and once
//! a direction has delivered plaintext the dissector inside is told its stream has a hole.

use super::decrypt::{Decryptor, Plaintext, SessionError, SessionParams};
use super::handshake::{self, ServerHello};
use super::keystore::KeyStore;
use super::summary::{DecryptionStatus, TlsDecryption};
use super::{ExtensionType, TlsVersion};
use crate::direction::{Direction, PerDirection};
use crate::proto::Dissector;
use crate::session::SessionRecord;
use crate::time::Timestamp;
use std::sync::Arc;

/// Most bytes per direction kept while the keys are not yet known.
pub const MAX_BACKLOG: usize = 256 << 10;
/// Most bytes of one decrypted handshake message (certificate chains are the large ones).
pub const MAX_HANDSHAKE_MESSAGE: usize = 64 << 10;

/// What the ClientHello tells decryption.
#[derive(Debug, Clone, Copy)]
pub(super) struct ClientFacts {
    random: [u8; 32],
    etm: bool,
    ems: bool,
    /// The session id offered (at most 32 bytes), to tell a resumption.
    session_id: [u8; 32],
    session_id_len: usize,
}

/// The hellos' facts, as the observer reads them.
#[derive(Debug, Default)]
pub(super) struct Hellos {
    client: Option<ClientFacts>,
    /// The ServerHello (not a HelloRetryRequest) and its extension flags.
    server: Option<(SessionParams, bool, bool)>,
    /// What the ServerHello says about resumption.
    server_resume: Option<ServerResume>,
}

/// How a ServerHello marks a resumed session.
#[derive(Debug, Clone, Copy)]
enum ServerResume {
    /// TLS 1.3: whether it accepted a pre-shared key.
    Psk(bool),
    /// Older versions: the session id it chose (at most 32 bytes).
    SessionId([u8; 32], usize),
}

impl Hellos {
    /// Notes the first ClientHello.
    pub(super) fn client_hello(&mut self, random: [u8; 32], etm: bool, ems: bool, id: &[u8]) {
        let mut session_id = [0; 32];
        let session_id_len = id.len().min(32);
        session_id[..session_id_len].copy_from_slice(&id[..session_id_len]);
        self.client.get_or_insert(ClientFacts {
            random,
            etm,
            ems,
            session_id,
            session_id_len,
        });
    }

    /// Whether the server resumed an earlier session, once both hellos are known: TLS 1.3
    /// accepts a pre-shared key; older versions echo the session id the client offered (RFC
    /// 5246 7.4.1.3; RFC 5077 3.4 for tickets).
    pub(super) fn resumed(&self) -> bool {
        let (Some(c), Some(s)) = (&self.client, &self.server_resume) else {
            return false;
        };
        match s {
            ServerResume::Psk(accepted) => *accepted,
            ServerResume::SessionId(id, len) => {
                c.session_id_len > 0 && id[..*len] == c.session_id[..c.session_id_len]
            }
        }
    }

    /// Notes a ServerHello; a HelloRetryRequest sets nothing.
    pub(super) fn server_hello(&mut self, sh: &ServerHello<'_>) {
        if sh.hello_retry_request || self.server.is_some() {
            return;
        }
        let has = |kind| sh.extension(kind).is_some();
        self.server_resume = Some(if sh.negotiated_version() == TlsVersion::TLS13 {
            ServerResume::Psk(has(ExtensionType::PRE_SHARED_KEY))
        } else {
            let mut id = [0; 32];
            let len = sh.session_id.len().min(32);
            id[..len].copy_from_slice(&sh.session_id[..len]);
            ServerResume::SessionId(id, len)
        });
        let params = SessionParams {
            client_random: [0; 32],
            server_random: sh.random,
            version: sh.negotiated_version(),
            suite: sh.cipher_suite,
            encrypt_then_mac: false,
            extended_master_secret: false,
        };
        self.server = Some((
            params,
            has(ExtensionType::ENCRYPT_THEN_MAC),
            has(ExtensionType::EXTENDED_MASTER_SECRET),
        ));
    }

    /// The session's parameters, once both hellos are known.
    fn params(&self) -> Option<SessionParams> {
        let client = self.client?;
        let (mut params, etm, ems) = self.server?;
        params.client_random = client.random;
        params.encrypt_then_mac = client.etm && etm;
        params.extended_master_secret = client.ems && ems;
        Some(params)
    }
}

#[derive(Debug)]
enum State {
    /// The secrets are not known yet.
    Waiting,
    /// Records are being opened.
    Open(Box<Decryptor>),
    /// Nothing can be decrypted; `status` says why.
    Off,
}

/// Handshake bytes that travelled encrypted, framed into messages.
#[derive(Debug, Default)]
struct HandshakeBuffer {
    pending: Vec<u8>,
    /// A message too large to keep was met; the rest of this direction's handshake is skipped.
    overflowed: bool,
}

/// Decrypts one TLS session and dissects its plaintext.
pub struct TlsTunnel {
    keys: Arc<KeyStore>,
    inner: Box<dyn Dissector>,
    state: State,
    backlog: PerDirection<Vec<(Timestamp, Vec<u8>)>>,
    backlog_bytes: PerDirection<usize>,
    /// A gap (or a broken record stream) ended decryption of the direction.
    lost: PerDirection<bool>,
    handshake: PerDirection<HandshakeBuffer>,
    stats: TlsDecryption,
    tls13: bool,
    ended: bool,
}

impl std::fmt::Debug for TlsTunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTunnel")
            .field("state", &self.state)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl TlsTunnel {
    /// A layer that finds its secrets in `keys` and feeds the plaintext to `inner`.
    pub fn new(keys: Arc<KeyStore>, inner: Box<dyn Dissector>) -> Self {
        TlsTunnel {
            keys,
            inner,
            state: State::Waiting,
            backlog: PerDirection::default(),
            backlog_bytes: PerDirection::default(),
            lost: PerDirection::default(),
            handshake: PerDirection::default(),
            stats: TlsDecryption::default(),
            tls13: false,
            ended: false,
        }
    }

    /// The next bytes of `dir`'s TLS stream, after the observer has read them.
    pub(super) fn on_data(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        hellos: &Hellos,
        rec: &mut SessionRecord,
    ) {
        if *self.lost.get(dir) || self.ended {
            return;
        }
        if matches!(self.state, State::Waiting) {
            let queued = self.backlog_bytes.get_mut(dir);
            *queued += data.len();
            if *queued > MAX_BACKLOG {
                self.stop(
                    DecryptionStatus::HandshakeIncomplete,
                    "tls_decrypt_backlog",
                    format!(
                        "more than {MAX_BACKLOG} bytes from the {} before both hellos were \
                         seen; the session is not decrypted",
                        dir.as_str()
                    ),
                    ts,
                    rec,
                );
                return;
            }
            self.backlog.get_mut(dir).push((ts, data.to_vec()));
            self.try_open(hellos, ts, rec);
            return;
        }
        if matches!(self.state, State::Open(_)) {
            self.feed(dir, data, ts, rec);
        }
    }

    /// Ends decryption without keys.
    fn stop(
        &mut self,
        status: DecryptionStatus,
        kind: &'static str,
        detail: String,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        self.state = State::Off;
        self.stats.status = status;
        self.backlog = PerDirection::default();
        self.backlog_bytes = PerDirection::default();
        rec.anomaly(ts, None, kind, detail);
    }

    /// Builds the decryptor once both hellos and the secrets are known, then replays the
    /// backlog of both directions.
    fn try_open(&mut self, hellos: &Hellos, ts: Timestamp, rec: &mut SessionRecord) {
        self.open_with(hellos, false, ts, rec);
    }

    /// [`Self::try_open`]; `last` makes a live store look at its files now, and a miss final.
    fn open_with(&mut self, hellos: &Hellos, last: bool, ts: Timestamp, rec: &mut SessionRecord) {
        let Some(params) = hellos.params() else {
            return;
        };
        self.tls13 = params.version == TlsVersion::TLS13;
        let found = if last {
            self.keys.secrets_now(&params.client_random)
        } else {
            self.keys.secrets(&params.client_random)
        };
        let Some(secrets) = found else {
            if self.keys.is_live() && !last {
                // The client may not have written its line yet; look again with more data.
                return;
            }
            let random = hex::encode(params.client_random);
            return self.stop(
                DecryptionStatus::NoKey,
                "tls_no_key",
                format!("the key log has no secret for client random {random}"),
                ts,
                rec,
            );
        };
        match Decryptor::with_secrets(&params, &secrets) {
            Ok(decryptor) => self.state = State::Open(Box::new(decryptor)),
            Err(e) => {
                let status = match e {
                    SessionError::NoKeys => DecryptionStatus::NoKey,
                    _ => DecryptionStatus::Unsupported,
                };
                return self.stop(status, "tls_not_decrypted", e.to_string(), ts, rec);
            }
        }
        for dir in [Direction::Client, Direction::Server] {
            let queued = std::mem::take(self.backlog.get_mut(dir));
            *self.backlog_bytes.get_mut(dir) = 0;
            for (at, bytes) in queued {
                self.feed(dir, &bytes, at, rec);
            }
        }
    }

    /// Opens what `data` completes and hands each plaintext on.
    fn feed(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        let State::Open(decryptor) = &mut self.state else {
            return;
        };
        let opened = decryptor.feed(dir, data);
        let stats = decryptor.stats(dir);
        *self.stats.records_decrypted.get_mut(dir) = stats.decrypted;
        *self.stats.records_failed.get_mut(dir) = stats.failed;
        if stats.desync {
            *self.lost.get_mut(dir) = true;
        }
        for plain in opened {
            match plain {
                Plaintext::ApplicationData(bytes) => {
                    *self.stats.plaintext_bytes.get_mut(dir) += bytes.len() as u64;
                    rec.inside_tls = true;
                    self.inner.on_data(dir, &bytes, ts, rec);
                    rec.inside_tls = false;
                }
                Plaintext::Handshake(bytes) => self.handshake_bytes(dir, &bytes, ts, rec),
                Plaintext::Alert(_) => {}
                Plaintext::Undecryptable { len } => {
                    if *self.stats.plaintext_bytes.get(dir) > 0 {
                        // The stream inside has a hole of about this size.
                        rec.inside_tls = true;
                        self.inner.on_gap(dir, len as u64, ts, rec);
                        rec.inside_tls = false;
                    }
                }
            }
        }
    }

    /// `len` bytes of `dir`'s TLS stream were never captured: its records can no longer be
    /// framed, so nothing more of that direction is decrypted.
    pub(super) fn on_gap(
        &mut self,
        dir: Direction,
        len: u64,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        if *self.lost.get(dir) || self.ended {
            return;
        }
        *self.lost.get_mut(dir) = true;
        if matches!(self.state, State::Open(_)) {
            *self.stats.records_failed.get_mut(dir) += 1;
            rec.anomaly(
                ts,
                Some(dir),
                "tls_decrypt_gap",
                "a gap in the TLS stream: later records of this side cannot be decrypted",
            );
            if *self.stats.plaintext_bytes.get(dir) > 0 {
                rec.inside_tls = true;
                self.inner.on_gap(dir, len, ts, rec);
                rec.inside_tls = false;
            }
        }
    }

    /// `dir` closed its side.
    pub(super) fn on_fin(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
        if matches!(self.state, State::Open(_)) && !self.ended {
            rec.inside_tls = true;
            self.inner.on_fin(dir, ts, rec);
            rec.inside_tls = false;
        }
    }

    /// The session is over: ends the dissector inside and records what decryption achieved.
    pub(super) fn finish(&mut self, ts: Timestamp, hellos: &Hellos, rec: &mut SessionRecord) {
        if self.ended {
            return;
        }
        if matches!(self.state, State::Waiting) {
            // While sniffing, the client may have written its secrets just now.
            self.open_with(hellos, true, ts, rec);
        }
        self.ended = true;
        let opened = matches!(self.state, State::Open(_));
        if opened {
            rec.inside_tls = true;
            self.inner.on_end(ts, rec);
            rec.inside_tls = false;
            let ok: u64 = self.stats.records_decrypted.client + self.stats.records_decrypted.server;
            let bad: u64 = self.stats.records_failed.client + self.stats.records_failed.server;
            self.stats.status = match (ok, bad) {
                (_, 0) => DecryptionStatus::Decrypted,
                (0, _) => DecryptionStatus::Failed,
                _ => DecryptionStatus::Partial,
            };
            if bad > 0 {
                rec.anomaly(
                    ts,
                    None,
                    "tls_records_undecrypted",
                    format!("{bad} TLS records could not be decrypted ({ok} were)"),
                );
            }
        } else if matches!(self.state, State::Waiting) {
            let had_bytes = self.backlog_bytes.client + self.backlog_bytes.server > 0;
            if had_bytes {
                rec.anomaly(
                    ts,
                    None,
                    "tls_not_decrypted",
                    "the hellos (or, while sniffing, the key log line) needed to decrypt \
                     the session were not seen",
                );
            }
            self.stats.status = DecryptionStatus::HandshakeIncomplete;
        }
        if let Some(tls) = rec.tls.as_mut() {
            tls.decrypted = opened
                && self.stats.records_decrypted.client + self.stats.records_decrypted.server > 0;
            tls.decryption = Some(std::mem::take(&mut self.stats));
        }
    }

    /// Frames decrypted handshake bytes into messages and reads the ones that matter.
    fn handshake_bytes(
        &mut self,
        dir: Direction,
        bytes: &[u8],
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) {
        let buffer = self.handshake.get_mut(dir);
        if buffer.overflowed {
            return;
        }
        buffer.pending.extend_from_slice(bytes);
        let mut at = 0;
        while let Some(head) = buffer.pending.get(at..at + 4) {
            let len = usize::from(head[1]) << 16 | usize::from(head[2]) << 8 | usize::from(head[3]);
            if len > MAX_HANDSHAKE_MESSAGE {
                buffer.overflowed = true;
                buffer.pending.clear();
                rec.anomaly(
                    ts,
                    Some(dir),
                    "tls_handshake_too_large",
                    format!("an encrypted handshake message of {len} bytes was not read"),
                );
                return;
            }
            let Some(body) = buffer.pending.get(at + 4..at + 4 + len) else {
                break;
            };
            *self.stats.handshake_messages.get_mut(dir) += 1;
            encrypted_message(head[0], body, dir, self.tls13, ts, rec);
            at += 4 + len;
        }
        buffer.pending.drain(..at);
    }
}

/// Records what an encrypted handshake message shows: the TLS 1.3 EncryptedExtensions and the
/// certificates that TLS 1.3 never sends in clear.
fn encrypted_message(
    msg_type: u8,
    body: &[u8],
    dir: Direction,
    tls13: bool,
    ts: Timestamp,
    rec: &mut SessionRecord,
) {
    const ENCRYPTED_EXTENSIONS: u8 = 8;
    const CERTIFICATE: u8 = 11;
    let problem = |rec: &mut SessionRecord, what: &str, e: handshake::HandshakeError| {
        rec.anomaly(
            ts,
            Some(dir),
            "tls_malformed_handshake",
            format!("encrypted {what}: {e}"),
        );
    };
    match msg_type {
        ENCRYPTED_EXTENSIONS if dir == Direction::Server => {
            match handshake::encrypted_extensions(body) {
                Ok(exts) => {
                    let alpn = exts
                        .iter()
                        .find(|e| e.kind == ExtensionType::ALPN)
                        .and_then(|e| handshake::alpn_names(e.data).ok())
                        .and_then(|names| {
                            names
                                .first()
                                .map(|n| String::from_utf8_lossy(n).into_owned())
                        });
                    if let Some(tls) = rec.tls.as_mut() {
                        let hs = &mut tls.handshake;
                        if hs.encrypted_extensions.is_empty() {
                            hs.encrypted_extensions = exts.iter().map(|e| e.kind).collect();
                        }
                        if hs.alpn.is_none() {
                            hs.alpn = alpn;
                        }
                    }
                }
                Err(e) => problem(rec, "encrypted_extensions", e),
            }
        }
        CERTIFICATE => {
            let list = if tls13 {
                handshake::certificate_list_tls13(body)
            } else {
                handshake::certificate_list(body)
            };
            match list {
                Ok(certs) => super::keep_certificate(&certs, dir, ts, rec),
                Err(e) => problem(rec, "certificate", e),
            }
        }
        _ => {}
    }
}
