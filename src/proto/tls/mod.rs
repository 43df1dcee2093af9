//! TLS observation: counts encrypted bytes and, from the clear-text handshake, records metadata
//! (SNI, versions, cipher suites, ALPN, JA3/JA3S/JA4 fingerprints, the server certificate of
//! TLS 1.2 and older, alerts).
//!
//! Layout: [`record`] frames each direction's stream into records and reassembles handshake
//! messages; [`handshake`] reads ClientHello, ServerHello and Certificate into typed views;
//! [`fingerprint`] computes JA3, JA3S and JA4; [`certificate`] summarises X.509 certificates;
//! [`names`] holds the typed code points and their IANA names; [`keylog`] reads NSS key log
//! files and [`decrypt`] turns protected records into plaintext with their secrets.
//!
//! Why a parser of our own rather than `tls-parser`: the handful of structures needed here are
//! length-prefixed vectors that a 60-line bounds-checked cursor reads exactly, keeping the raw
//! extension order and bytes that JA3/JA4 need. `tls-parser` would bring nom 7, nom-derive,
//! num_enum, phf and a syn 1 build for those same few structures, and its streaming record
//! parser does not bound buffering the way this module must. x509-parser is kept for the
//! certificates, where DER parsing is genuinely large.
//!
//! JSON (flattened into the session's `tls` next to `mode`, `started`, `encrypted_bytes`):
//! `sni`, `version`, `cipher`, `alpn`, `ja3`, `ja3_hash`, `ja4`, `ja3s`, `ja3s_hash`,
//! `established`, `client_hello {..}`, `server_hello {..}`, `certificate {..}`,
//! `client_certificate {..}`, `alerts [..]`, `application_data_bytes {client, server}`; see
//! [`TlsHandshake`]. Anomaly kinds: `not_tls`, `tls_midstream`, `tls_malformed_record`,
//! `tls_desync`, `tls_malformed_handshake`, `tls_malformed_extension`, `tls_bad_certificate`,
//! `tls_unexpected_message`, `tls_handshake_too_large`, `tls_handshake_limit`,
//! `tls_handshake_incomplete`, `tls_handshake_desync`, `tls_handshake_truncated`.
//!
//! Each direction is read on its own (a fact about the client never depends on when the
//! server's bytes arrived): the client's stream is clear until its change_cipher_spec, the
//! server's until its change_cipher_spec or a ServerHello choosing TLS 1.3.

pub mod certificate;
pub mod decrypt;
pub mod fingerprint;
pub mod handshake;
pub mod keylog;
pub mod keystore;
pub mod names;
pub mod record;
pub mod summary;
#[cfg(test)]
mod testutil;
pub mod tunnel;

pub use certificate::CertificateInfo;
pub use keystore::KeyStore;
pub use names::{
    AlertDescription, AlertLevel, CipherSuite, EcPointFormat, ExtensionType, NamedGroup,
    SignatureScheme, TlsVersion, is_grease, tls_version_name,
};
pub use summary::{
    ClientHelloInfo, DecryptionStatus, ServerHelloInfo, TlsAlert, TlsDecryption, TlsHandshake,
};
pub use tunnel::TlsTunnel;

use super::Dissector;
use crate::limits::Limits;
use crate::session::{
    Direction, EventKind, PerDirection, Protocol, SessionRecord, TlsInfo, TlsMode,
};
use crate::time::Timestamp;
use fingerprint::ClientHelloFields;
use handshake::{ClientHello, HandshakeError, ServerHello};
use record::{After, RecordEvent, RecordReader};
use std::sync::Arc;

/// Content type of a TLS handshake record: what a client's TLS starts with.
pub const HANDSHAKE_RECORD: u8 = 0x16;
/// Content type of a TLS alert record: how a server may refuse a handshake.
pub const ALERT_RECORD: u8 = 0x15;

/// Whether `b` can open a TLS record (change_cipher_spec, alert, handshake, application data)
/// or an SSLv2-style hello; any other first byte where TLS was expected is clear text.
pub fn may_open_tls(b: u8) -> bool {
    (0x14..=0x17).contains(&b) || b >= 0x80
}

/// What each side's first bytes after an accepted STARTTLS/STLS were: TLS, or clear text
/// where TLS was expected (a stripped or broken TLS layer, or commands injected before the
/// handshake). A side that goes on in clear text is dissected again as its protocol; only TLS
/// records count as encrypted.
#[derive(Debug, Default)]
pub struct UpgradeCheck {
    /// Sides whose first bytes after the upgrade were looked at (or lost in a gap).
    checked: PerDirection<bool>,
    /// Sides that went on in clear text.
    clear: PerDirection<bool>,
}

impl UpgradeCheck {
    /// Looks at `dir`'s first bytes after the upgrade, once; true when they cannot open a
    /// TLS record. Then `anomaly` (with `detail`) and the session's cleartext fact record it.
    pub fn goes_clear(
        &mut self,
        dir: Direction,
        data: &[u8],
        ts: Timestamp,
        rec: &mut SessionRecord,
        (anomaly, detail): (&str, &str),
    ) -> bool {
        let checked = self.checked.get_mut(dir);
        let Some(&first) = data.first().filter(|_| !*checked) else {
            return false;
        };
        *checked = true;
        if may_open_tls(first) {
            return false;
        }
        rec.anomaly(ts, Some(dir), anomaly, detail);
        *self.clear.get_mut(dir) = true;
        rec.note_cleartext_instead_of_tls(TlsMode::Starttls, dir, ts);
        true
    }

    /// A gap came first: bytes after it may be the middle of a record and decide nothing.
    pub fn lost(&mut self, dir: Direction) {
        *self.checked.get_mut(dir) = true;
    }

    /// Whether `dir`'s first bytes after the upgrade were looked at.
    pub fn checked(&self, dir: Direction) -> bool {
        *self.checked.get(dir)
    }

    /// Whether `dir` went on in clear text, so a TLS record at a line start is TLS after all.
    pub fn clear(&self, dir: Direction) -> bool {
        *self.clear.get(dir)
    }
}

/// Most alerts kept per session; later ones are dropped (a fatal alert ends a session anyway).
pub const MAX_ALERTS: usize = 32;

/// Watches the TLS part of a session: everything after STARTTLS/STLS, or all of an
/// implicit-TLS session. Nothing it sees is dissected as SMTP or POP3.
#[derive(Debug)]
pub struct TlsObserver {
    readers: PerDirection<RecordReader>,
    /// application_data records seen per direction (for `established`).
    app_records: PerDirection<u64>,
    /// What the hellos said, for decryption.
    hellos: tunnel::Hellos,
    /// The decrypting layer and the dissector inside it, when a key log was given.
    tunnel: Option<Box<TlsTunnel>>,
}

impl Default for TlsObserver {
    fn default() -> Self {
        TlsObserver {
            readers: PerDirection {
                client: RecordReader::new(true),
                server: RecordReader::new(false),
            },
            app_records: PerDirection::default(),
            hellos: tunnel::Hellos::default(),
            tunnel: None,
        }
    }
}

impl TlsObserver {
    /// Starts TLS on `rec` at `ts`: sets `rec.tls` and records the switch as an event from `dir`.
    pub fn start(mode: TlsMode, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) -> Self {
        rec.tls = Some(Box::new(TlsInfo {
            mode,
            started: ts,
            encrypted_bytes: PerDirection::default(),
            handshake: TlsHandshake::default(),
            decrypted: false,
            decryption: None,
        }));
        rec.push_event(ts, dir, EventKind::TlsStart { mode });
        TlsObserver::default()
    }

    /// Decrypts the session with the secrets in `keys` and dissects the plaintext with `inner`.
    pub fn decrypting(mut self, keys: Arc<KeyStore>, inner: Box<dyn Dissector>) -> Self {
        self.tunnel = Some(Box::new(TlsTunnel::new(keys, inner)));
        self
    }

    /// Bytes of the TLS stream from `dir`.
    pub fn on_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        if let Some(tls) = rec.tls.as_mut() {
            *tls.encrypted_bytes.get_mut(dir) += data.len() as u64;
        }
        let TlsObserver {
            readers,
            app_records,
            hellos,
            tunnel,
        } = self;
        readers.get_mut(dir).feed(data, &mut |event| {
            apply(event, dir, ts, app_records, hellos, rec)
        });
        if let Some(tunnel) = tunnel.as_mut() {
            tunnel.on_data(dir, data, ts, hellos, rec);
        }
    }

    /// Missing bytes in the TLS stream from `dir`.
    pub fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        rec.push_event(ts, dir, EventKind::Gap { bytes: len });
        let TlsObserver {
            readers,
            app_records,
            hellos,
            tunnel,
        } = self;
        readers.get_mut(dir).gap(len, &mut |event| {
            apply(event, dir, ts, app_records, hellos, rec)
        });
        if let Some(tunnel) = tunnel.as_mut() {
            tunnel.on_gap(dir, len, ts, rec);
        }
    }

    /// `dir` closed its side of the connection.
    pub fn on_fin(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
        if let Some(tunnel) = self.tunnel.as_mut() {
            tunnel.on_fin(dir, ts, rec);
        }
    }

    /// The session is over: reports a handshake message left incomplete. Optional; the record
    /// is already up to date after every `on_data`.
    pub fn finish(&mut self, ts: Timestamp, rec: &mut SessionRecord) {
        if let Some(tunnel) = self.tunnel.as_mut() {
            tunnel.finish(ts, &self.hellos, rec);
        }
        for dir in [Direction::Client, Direction::Server] {
            let pending = self.readers.get(dir).pending_handshake_bytes();
            if pending > 0 {
                rec.anomaly(
                    ts,
                    Some(dir),
                    "tls_handshake_truncated",
                    format!("stream ended inside a handshake message ({pending} bytes buffered)"),
                );
            }
        }
    }
}

/// Applies one record-layer event to the session record.
fn apply(
    event: RecordEvent<'_>,
    dir: Direction,
    ts: Timestamp,
    app_records: &mut PerDirection<u64>,
    hellos: &mut tunnel::Hellos,
    rec: &mut SessionRecord,
) -> After {
    match event {
        RecordEvent::Handshake { msg_type, body } => {
            return on_handshake(msg_type, body, dir, ts, hellos, rec);
        }
        RecordEvent::Sslv2ClientHello { body } => match ClientHello::parse_sslv2(body) {
            Ok(ch) => on_client_hello(&ch, ts, hellos, rec),
            Err(e) => malformed(rec, ts, dir, "sslv2_client_hello", &e),
        },
        RecordEvent::ChangeCipherSpec => {}
        RecordEvent::Alert { level, description } => {
            if let Some(tls) = rec.tls.as_mut()
                && tls.handshake.alerts.len() < MAX_ALERTS
            {
                tls.handshake.alerts.push(TlsAlert {
                    ts,
                    from: dir,
                    level: AlertLevel(level),
                    description: AlertDescription(description),
                });
            }
        }
        RecordEvent::ApplicationData { len } => {
            *app_records.get_mut(dir) += 1;
            if let Some(tls) = rec.tls.as_mut() {
                *tls.handshake.application_data_bytes.get_mut(dir) += len as u64;
                tls.handshake.established = tls.handshake.server_hello.is_some()
                    && app_records.client > 0
                    && app_records.server > 0;
            }
        }
        RecordEvent::Problem { kind, detail } => rec.anomaly(ts, Some(dir), kind, detail),
        RecordEvent::NotTls { text, detail } => {
            let implicit = rec
                .tls
                .as_ref()
                .is_some_and(|t| t.mode == TlsMode::Implicit);
            if !text && implicit && !rec.handshake_seen {
                // Binary bytes on a TLS port whose TCP handshake we missed are most likely
                // the middle of a record, not a protocol mix-up.
                rec.anomaly(
                    ts,
                    Some(dir),
                    "tls_midstream",
                    format!("session picked up mid-stream, records cannot be framed: {detail}"),
                );
            } else {
                rec.anomaly(ts, Some(dir), "not_tls", detail);
            }
        }
    }
    After::Continue
}

/// Reports a handshake message that could not be read.
fn malformed(
    rec: &mut SessionRecord,
    ts: Timestamp,
    dir: Direction,
    what: &str,
    e: &HandshakeError,
) {
    rec.anomaly(
        ts,
        Some(dir),
        "tls_malformed_handshake",
        format!("{what}: {e}"),
    );
}

/// Handles one clear-text handshake message.
fn on_handshake(
    msg_type: u8,
    body: &[u8],
    dir: Direction,
    ts: Timestamp,
    hellos: &mut tunnel::Hellos,
    rec: &mut SessionRecord,
) -> After {
    const CLIENT_HELLO: u8 = 1;
    const SERVER_HELLO: u8 = 2;
    const CERTIFICATE: u8 = 11;
    match (msg_type, dir) {
        (CLIENT_HELLO, Direction::Client) => match ClientHello::parse(body) {
            Ok(ch) => {
                on_client_hello(&ch, ts, hellos, rec);
                note_resumption(hellos, rec);
            }
            Err(e) => malformed(rec, ts, dir, "client_hello", &e),
        },
        (SERVER_HELLO, Direction::Server) => match ServerHello::parse(body) {
            Ok(sh) => {
                hellos.server_hello(&sh);
                note_resumption(hellos, rec);
                return on_server_hello(&sh, ts, rec);
            }
            Err(e) => malformed(rec, ts, dir, "server_hello", &e),
        },
        (CERTIFICATE, _) => on_certificate(body, dir, ts, rec),
        (CLIENT_HELLO | SERVER_HELLO, _) => rec.anomaly(
            ts,
            Some(dir),
            "tls_unexpected_message",
            format!(
                "{} sent by the {}",
                names::handshake_type_name(msg_type).unwrap_or("hello"),
                dir.as_str()
            ),
        ),
        _ => {}
    }
    After::Continue
}

/// Marks the session resumed once both hellos show it, whichever came first.
fn note_resumption(hellos: &tunnel::Hellos, rec: &mut SessionRecord) {
    if hellos.resumed()
        && let Some(tls) = rec.tls.as_mut()
    {
        tls.handshake.resumed = true;
    }
}

/// Lossy UTF-8 text of a protocol string.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Records the first ClientHello (a second one, after HelloRetryRequest, changes no fingerprint).
fn on_client_hello(
    ch: &ClientHello<'_>,
    ts: Timestamp,
    hellos: &mut tunnel::Hellos,
    rec: &mut SessionRecord,
) {
    hellos.client_hello(
        ch.random,
        ch.extension(ExtensionType::ENCRYPT_THEN_MAC).is_some(),
        ch.extension(ExtensionType::EXTENDED_MASTER_SECRET)
            .is_some(),
        ch.session_id,
    );
    let already = rec
        .tls
        .as_ref()
        .is_none_or(|t| t.handshake.client_hello.is_some());
    if already {
        return;
    }
    let mut problems: Vec<String> = Vec::new();
    let mut note = |what: &str, e: HandshakeError| problems.push(format!("{what}: {e}"));

    let mut sni = None;
    let mut groups = Vec::new();
    let mut point_formats = Vec::new();
    let mut sig_algs = Vec::new();
    let mut versions_all = Vec::new();
    let mut alpn: Vec<&[u8]> = Vec::new();
    for ext in &ch.extensions {
        match ext.kind {
            ExtensionType::SERVER_NAME if sni.is_none() => match handshake::server_name(ext.data) {
                Ok(name) => sni = name,
                Err(e) => note("server_name", e),
            },
            ExtensionType::SUPPORTED_GROUPS if groups.is_empty() => {
                match handshake::u16_list(ext.data, "supported_groups") {
                    Ok(v) => groups = v.into_iter().map(NamedGroup).collect(),
                    Err(e) => note("supported_groups", e),
                }
            }
            ExtensionType::EC_POINT_FORMATS if point_formats.is_empty() => {
                match handshake::point_formats(ext.data) {
                    Ok(v) => point_formats = v.iter().map(|&p| EcPointFormat(p)).collect(),
                    Err(e) => note("ec_point_formats", e),
                }
            }
            ExtensionType::SIGNATURE_ALGORITHMS if sig_algs.is_empty() => {
                match handshake::u16_list(ext.data, "signature_algorithms") {
                    Ok(v) => sig_algs = v.into_iter().map(SignatureScheme).collect(),
                    Err(e) => note("signature_algorithms", e),
                }
            }
            ExtensionType::SUPPORTED_VERSIONS if versions_all.is_empty() => {
                match handshake::client_supported_versions(ext.data) {
                    Ok(v) => versions_all = v.into_iter().map(TlsVersion).collect(),
                    Err(e) => note("supported_versions", e),
                }
            }
            ExtensionType::ALPN if alpn.is_empty() => match handshake::alpn_names(ext.data) {
                Ok(v) => alpn = v,
                Err(e) => note("application_layer_protocol_negotiation", e),
            },
            _ => {}
        }
    }
    let extensions: Vec<ExtensionType> = ch.extensions.iter().map(|e| e.kind).collect();
    let fields = ClientHelloFields {
        legacy_version: ch.legacy_version,
        cipher_suites: &ch.cipher_suites,
        extensions: &extensions,
        supported_groups: &groups,
        ec_point_formats: &point_formats,
        signature_algorithms: &sig_algs,
        supported_versions: &versions_all,
        first_alpn: alpn.first().copied(),
    };
    // JA3 and JA4 are defined on the TLS ClientHello; the SSLv2 form has no extensions and
    // 24-bit cipher specs, so it gets none.
    let (ja3, ja4) = if ch.sslv2_format {
        (None, None)
    } else {
        (
            Some(fingerprint::ja3_string(&fields)),
            Some(fingerprint::ja4(&fields)),
        )
    };
    let info = ClientHelloInfo {
        sslv2_format: ch.sslv2_format,
        legacy_version: ch.legacy_version,
        supported_versions: versions_all
            .into_iter()
            .filter(|v| !is_grease(v.0))
            .collect(),
        cipher_suites: ch.cipher_suites.clone(),
        extensions,
        supported_groups: groups,
        ec_point_formats: point_formats,
        signature_algorithms: sig_algs,
        alpn: alpn.iter().map(|p| text(p)).collect(),
        compression_methods: ch.compression_methods.to_vec(),
        session_id_length: ch.session_id.len(),
    };
    if let Some(tls) = rec.tls.as_mut() {
        let hs = &mut tls.handshake;
        hs.sni = sni.map(text);
        hs.ja3_hash = ja3.as_deref().map(fingerprint::md5_hex);
        hs.ja3 = ja3;
        hs.ja4 = ja4;
        hs.client_hello = Some(info);
    }
    for p in problems {
        rec.anomaly(
            ts,
            Some(Direction::Client),
            "tls_malformed_extension",
            format!("client_hello {p}"),
        );
    }
}

/// Records a ServerHello; tells the record layer whether the server now encrypts.
fn on_server_hello(sh: &ServerHello<'_>, ts: Timestamp, rec: &mut SessionRecord) -> After {
    let selected = sh.selected_version();
    let alpn = sh.alpn();
    let version = selected.clone().ok().flatten().unwrap_or(sh.legacy_version);
    let extensions: Vec<ExtensionType> = sh.extensions.iter().map(|e| e.kind).collect();
    let ja3s = fingerprint::ja3s_string(sh.legacy_version, sh.cipher_suite, &extensions);
    if let Some(tls) = rec.tls.as_mut() {
        let hs = &mut tls.handshake;
        let retried_before = hs
            .server_hello
            .as_ref()
            .is_some_and(|s| s.hello_retry_request);
        hs.server_hello = Some(ServerHelloInfo {
            legacy_version: sh.legacy_version,
            selected_version: selected.clone().ok().flatten(),
            cipher_suite: sh.cipher_suite,
            compression_method: sh.compression_method,
            extensions,
            alpn: alpn.clone().ok().flatten().map(text),
            hello_retry_request: sh.hello_retry_request || retried_before,
            session_id_length: sh.session_id.len(),
        });
        hs.version = Some(version);
        hs.cipher = Some(sh.cipher_suite.to_string());
        hs.alpn = alpn.clone().ok().flatten().map(text);
        hs.ja3s_hash = Some(fingerprint::md5_hex(&ja3s));
        hs.ja3s = Some(ja3s);
    }
    if let Err(e) = selected {
        malformed(
            rec,
            ts,
            Direction::Server,
            "server_hello supported_versions",
            &e,
        );
    }
    if let Err(e) = alpn {
        malformed(rec, ts, Direction::Server, "server_hello alpn", &e);
    }
    let tls13 = version == TlsVersion::TLS13 || (0x7f00..=0x7fff).contains(&version.0);
    match (tls13, sh.hello_retry_request) {
        (true, true) => After::Tls13Retry,
        (true, false) => After::Encrypted,
        (false, _) => After::Continue,
    }
}

/// Records the first certificate of a Certificate message.
fn on_certificate(body: &[u8], dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
    match handshake::certificate_list(body) {
        Ok(certs) => keep_certificate(&certs, dir, ts, rec),
        Err(e) => malformed(rec, ts, dir, "certificate", &e),
    }
}

/// Keeps the first certificate of a chain as the sender's, unless one is already known; an
/// empty list is how a client declines a certificate request.
pub(super) fn keep_certificate(
    certs: &[&[u8]],
    dir: Direction,
    ts: Timestamp,
    rec: &mut SessionRecord,
) {
    let Some(first) = certs.first() else {
        return;
    };
    match CertificateInfo::from_der(first, certs.len()) {
        Ok(info) => {
            if let Some(tls) = rec.tls.as_mut() {
                let slot = match dir {
                    Direction::Server => &mut tls.handshake.certificate,
                    Direction::Client => &mut tls.handshake.client_certificate,
                };
                slot.get_or_insert(info);
            }
        }
        Err(e) => rec.anomaly(ts, Some(dir), "tls_bad_certificate", e.to_string()),
    }
}

/// A session that is TLS from its first byte (SMTPS 465, POP3S 995).
///
/// Each side's first byte decides, on its own, whether that side speaks TLS: a side of a
/// stream seen from its start whose first byte cannot open a TLS record speaks clear text
/// (a plain server on an implicit-TLS port) and is dissected as SMTP or POP3, with an anomaly;
/// only TLS records count as encrypted.
pub struct ImplicitTlsDissector {
    /// The observer, from the first TLS byte of either side.
    observer: Option<TlsObserver>,
    /// The clear-text dissector, once a side turned out to speak clear text.
    clear: Option<Box<dyn Dissector>>,
    /// What each side speaks, once its first byte is known.
    sides: PerDirection<Option<SideSpeaks>>,
    /// What the session carries inside TLS, and its bounds, for decryption.
    protocol: Protocol,
    limits: Limits,
}

impl std::fmt::Debug for ImplicitTlsDissector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImplicitTlsDissector")
            .field("observer", &self.observer)
            .field("clear", &self.clear.is_some())
            .field("sides", &self.sides)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// What one side of an implicit-TLS session turned out to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SideSpeaks {
    Tls,
    Clear,
}

impl ImplicitTlsDissector {
    /// A dissector for an implicit-TLS session carrying `protocol`.
    pub fn new(protocol: Protocol, limits: &Limits) -> Self {
        ImplicitTlsDissector {
            observer: None,
            clear: None,
            sides: PerDirection::default(),
            protocol,
            limits: limits.clone(),
        }
    }

    /// The observer, started at the session's first byte: the earliest one handed over by
    /// either side, so the start does not depend on which side the capture delivered first.
    fn observer(&mut self, ts: Timestamp, rec: &mut SessionRecord) -> &mut TlsObserver {
        let (protocol, limits) = (self.protocol, &self.limits);
        let observer = self.observer.get_or_insert_with(|| {
            // The client opens a TLS session, so the start is its event whichever side's
            // bytes the capture delivered first; its time is the earliest byte of either.
            let mut observer = TlsObserver::start(TlsMode::Implicit, Direction::Client, ts, rec);
            if let Some(keys) = limits.keys.clone() {
                // The dissector inside starts at the greeting, as on a clear-text port.
                let inner = crate::proto::inner_dissector(protocol, false, limits);
                observer = observer.decrypting(keys, inner);
            }
            observer
        });
        if let Some(tls) = rec.tls.as_mut()
            && ts < tls.started
        {
            tls.started = ts;
            if let Some(event) = rec
                .events
                .iter_mut()
                .find(|e| matches!(e.kind, EventKind::TlsStart { .. }))
            {
                event.ts = ts;
            }
        }
        observer
    }

    /// The clear-text dissector of the session's protocol, made on first use.
    fn clear(&mut self) -> &mut dyn Dissector {
        let (protocol, limits) = (self.protocol, &self.limits);
        self.clear
            .get_or_insert_with(|| {
                crate::proto::new_dissector(protocol, crate::proto::Framing::Plain, limits)
            })
            .as_mut()
    }

    /// What `dir` speaks, decided by its first byte (`None` for a gap: mid-record, so TLS).
    fn speaks(
        &mut self,
        dir: Direction,
        first: Option<u8>,
        ts: Timestamp,
        rec: &mut SessionRecord,
    ) -> SideSpeaks {
        if let Some(known) = *self.sides.get(dir) {
            return known;
        }
        // Mid-stream, a first byte may be the middle of a record: only a stream seen from
        // its start can show clear text.
        let speaks = match first {
            Some(b) if rec.handshake_seen && !may_open_tls(b) => {
                let detail = match dir {
                    Direction::Client => {
                        "the client spoke clear text on an implicit-TLS port; read as clear text"
                    }
                    Direction::Server => {
                        "the server spoke clear text on an implicit-TLS port; read as clear text"
                    }
                };
                rec.anomaly(ts, Some(dir), "implicit_tls_plaintext", detail);
                rec.note_cleartext_instead_of_tls(TlsMode::Implicit, dir, ts);
                SideSpeaks::Clear
            }
            _ => SideSpeaks::Tls,
        };
        *self.sides.get_mut(dir) = Some(speaks);
        speaks
    }
}

impl Dissector for ImplicitTlsDissector {
    fn on_data(&mut self, dir: Direction, data: &[u8], ts: Timestamp, rec: &mut SessionRecord) {
        let Some(&first) = data.first() else {
            return;
        };
        match self.speaks(dir, Some(first), ts, rec) {
            SideSpeaks::Tls => self.observer(ts, rec).on_data(dir, data, ts, rec),
            SideSpeaks::Clear => self.clear().on_data(dir, data, ts, rec),
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u64, ts: Timestamp, rec: &mut SessionRecord) {
        match self.speaks(dir, None, ts, rec) {
            SideSpeaks::Tls => self.observer(ts, rec).on_gap(dir, len, ts, rec),
            SideSpeaks::Clear => self.clear().on_gap(dir, len, ts, rec),
        }
    }

    fn on_fin(&mut self, dir: Direction, ts: Timestamp, rec: &mut SessionRecord) {
        if let Some(observer) = self.observer.as_mut() {
            observer.on_fin(dir, ts, rec);
        }
        if let Some(clear) = self.clear.as_mut() {
            clear.on_fin(dir, ts, rec);
        }
    }

    fn on_end(&mut self, ts: Timestamp, rec: &mut SessionRecord) {
        if let Some(observer) = self.observer.as_mut() {
            observer.finish(ts, rec);
        }
        if let Some(clear) = self.clear.as_mut() {
            clear.on_end(ts, rec);
        }
    }
}

#[cfg(test)]
mod tests;
