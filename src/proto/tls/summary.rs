//! What a TLS session's handshake showed, as recorded on the session (its `tls` object).

use super::certificate::CertificateInfo;
use super::names::{
    AlertDescription, AlertLevel, CipherSuite, EcPointFormat, ExtensionType, NamedGroup,
    SignatureScheme, TlsVersion,
};
use crate::direction::{Direction, PerDirection};
use crate::time::Timestamp;
use serde::Serialize;

/// Handshake metadata seen on a TLS session, flattened into the session's `tls` object.
///
/// Every key is always present: `null` or empty when the message was not seen in clear.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsHandshake {
    /// Host name the client asked for (ClientHello server_name), lossily decoded as UTF-8.
    pub sni: Option<String>,
    /// Negotiated version: the ServerHello's supported_versions choice, else its legacy_version.
    pub version: Option<TlsVersion>,
    /// Negotiated cipher suite: its IANA name, or hex when unknown.
    pub cipher: Option<String>,
    /// Protocol the server chose by ALPN (TLS 1.2 and older; TLS 1.3 sends it encrypted).
    pub alpn: Option<String>,
    /// JA3 string of the ClientHello.
    pub ja3: Option<String>,
    /// MD5 of `ja3`, lower-case hex (the usual JA3 fingerprint).
    pub ja3_hash: Option<String>,
    /// JA4 TLS client fingerprint of the ClientHello.
    pub ja4: Option<String>,
    /// JA3S string of the ServerHello.
    pub ja3s: Option<String>,
    /// MD5 of `ja3s`, lower-case hex.
    pub ja3s_hash: Option<String>,
    /// A ServerHello was seen and both sides then sent application data (the handshake
    /// evidently finished).
    pub established: bool,
    /// The server resumed an earlier session (TLS 1.3 pre-shared key, or the client's
    /// session id echoed), so no certificate was sent.
    pub resumed: bool,
    /// The ClientHello in detail.
    pub client_hello: Option<ClientHelloInfo>,
    /// The ServerHello in detail.
    pub server_hello: Option<ServerHelloInfo>,
    /// The server's certificate (first of its chain), when sent in clear (TLS 1.2 and older).
    pub certificate: Option<CertificateInfo>,
    /// The client's certificate, when it sent one in clear (TLS 1.2 and older).
    pub client_certificate: Option<CertificateInfo>,
    /// Alerts sent in clear, in stream order per side (at most [`MAX_ALERTS`]).
    pub alerts: Vec<TlsAlert>,
    /// Bytes in application_data records per direction (in TLS 1.3 this includes the
    /// encrypted handshake, which travels in such records).
    pub application_data_bytes: PerDirection<u64>,
    /// Extensions of the TLS 1.3 EncryptedExtensions message, read when the handshake was
    /// decrypted (omitted otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encrypted_extensions: Vec<ExtensionType>,
}

/// The ClientHello's offer, for the JSON record. Lists keep wire order and GREASE values
/// (named `GREASE`), except `supported_versions`, which leaves GREASE out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientHelloInfo {
    /// The hello used the SSLv2-compatible record format.
    pub sslv2_format: bool,
    /// `legacy_version`: the highest version offered before TLS 1.3.
    pub legacy_version: TlsVersion,
    /// Versions offered by supported_versions (TLS 1.3 capable clients), GREASE left out.
    pub supported_versions: Vec<TlsVersion>,
    /// Offered cipher suites.
    pub cipher_suites: Vec<CipherSuite>,
    /// Extensions sent.
    pub extensions: Vec<ExtensionType>,
    /// supported_groups (elliptic curves and finite-field groups).
    pub supported_groups: Vec<NamedGroup>,
    /// ec_point_formats.
    pub ec_point_formats: Vec<EcPointFormat>,
    /// signature_algorithms.
    pub signature_algorithms: Vec<SignatureScheme>,
    /// Offered ALPN protocol names, lossily decoded as UTF-8.
    pub alpn: Vec<String>,
    /// Compression methods offered (`0` none, `1` DEFLATE).
    pub compression_methods: Vec<u8>,
    /// Length of the session id offered for resumption.
    pub session_id_length: usize,
}

/// The ServerHello's choices, for the JSON record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerHelloInfo {
    /// `legacy_version` (`TLS 1.2` in TLS 1.3, whose choice is in `selected_version`).
    pub legacy_version: TlsVersion,
    /// The supported_versions choice, if the server sent one.
    pub selected_version: Option<TlsVersion>,
    /// The chosen cipher suite.
    pub cipher_suite: CipherSuite,
    /// The chosen compression method (`0` none, `1` DEFLATE).
    pub compression_method: u8,
    /// Extensions sent.
    pub extensions: Vec<ExtensionType>,
    /// The ALPN protocol chosen, lossily decoded as UTF-8.
    pub alpn: Option<String>,
    /// The server first answered with a TLS 1.3 HelloRetryRequest.
    pub hello_retry_request: bool,
    /// Length of the session id the server sent.
    pub session_id_length: usize,
}

/// One alert sent in clear.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsAlert {
    /// Capture time of the packet that completed it.
    pub ts: Timestamp,
    /// Which side sent it.
    pub from: Direction,
    /// `warning` or `fatal`.
    pub level: AlertLevel,
    /// The alert's name, e.g. `handshake_failure`.
    pub description: AlertDescription,
}

/// How far a key log got with one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecryptionStatus {
    /// The hellos that decryption needs were not both seen.
    #[default]
    HandshakeIncomplete,
    /// The key log holds no secret for this session's client random.
    NoKey,
    /// The negotiated version or cipher suite is one mailsift does not decrypt.
    Unsupported,
    /// Every protected record seen was opened.
    Decrypted,
    /// Some protected records opened and some did not (damage, a gap or a wrong secret).
    Partial,
    /// Protected records were seen and none opened: the secrets do not fit the session.
    Failed,
}

/// What decryption with a key log achieved on one session (`tls.decryption`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsDecryption {
    /// The outcome, in one word.
    pub status: DecryptionStatus,
    /// Protected records that authenticated and were opened, per direction.
    pub records_decrypted: PerDirection<u64>,
    /// Protected records that did not authenticate, or could not be read after a gap.
    pub records_failed: PerDirection<u64>,
    /// Application bytes recovered and handed to the SMTP or POP3 dissector, per direction.
    pub plaintext_bytes: PerDirection<u64>,
    /// Handshake messages that travelled encrypted and were read (TLS 1.3 EncryptedExtensions,
    /// Certificate, Finished, tickets), per direction.
    pub handshake_messages: PerDirection<u64>,
}
