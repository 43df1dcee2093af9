//! Typed, borrowing views of the handshake messages mailsift reads: ClientHello (TLS and the
//! SSLv2-compatible form), ServerHello, and the TLS 1.2 Certificate list.
//!
//! Every length is checked against what is left before it is used, so a hostile message can
//! only produce a [`HandshakeError`], never a panic or an allocation beyond its own size.

use super::names::{CipherSuite, ExtensionType, TlsVersion};

/// Why a handshake message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// A field runs past the end of its message or enclosing vector.
    #[error("{field} is cut short")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A field has a value the protocol does not allow.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field being read.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A bounds-checked cursor over big-endian TLS wire structures.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    /// True when every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next `n` bytes.
    pub(crate) fn take(
        &mut self,
        n: usize,
        field: &'static str,
    ) -> Result<&'a [u8], HandshakeError> {
        if n > self.rest.len() {
            return Err(HandshakeError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// One byte.
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, HandshakeError> {
        Ok(self.take(1, field)?[0])
    }

    /// A big-endian 16-bit integer.
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, HandshakeError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian 24-bit integer.
    pub(crate) fn u24(&mut self, field: &'static str) -> Result<usize, HandshakeError> {
        let b = self.take(3, field)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    /// A vector with a one-byte length prefix.
    pub(crate) fn vec8(&mut self, field: &'static str) -> Result<&'a [u8], HandshakeError> {
        let n = self.u8(field)?;
        self.take(usize::from(n), field)
    }

    /// A vector with a two-byte length prefix.
    pub(crate) fn vec16(&mut self, field: &'static str) -> Result<&'a [u8], HandshakeError> {
        let n = self.u16(field)?;
        self.take(usize::from(n), field)
    }

    /// A vector with a three-byte length prefix.
    pub(crate) fn vec24(&mut self, field: &'static str) -> Result<&'a [u8], HandshakeError> {
        let n = self.u24(field)?;
        self.take(n, field)
    }
}

/// Reads a vector of 16-bit values (its byte length must be even).
fn u16_values(data: &[u8], field: &'static str) -> Result<Vec<u16>, HandshakeError> {
    if !data.len().is_multiple_of(2) {
        return Err(HandshakeError::Invalid {
            field,
            reason: "odd length for a list of 16-bit values",
        });
    }
    Ok(data
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}

/// Requires that a structure has been read to its end.
fn expect_end(r: &Reader<'_>, field: &'static str) -> Result<(), HandshakeError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(HandshakeError::Invalid {
            field,
            reason: "bytes left over after its declared content",
        })
    }
}

/// One hello extension: its type and undecoded content, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension type.
    pub kind: ExtensionType,
    /// The extension's content.
    pub data: &'a [u8],
}

/// Reads the optional extensions block that ends a hello message.
fn extensions<'a>(r: &mut Reader<'a>) -> Result<Vec<Extension<'a>>, HandshakeError> {
    if r.is_empty() {
        // Hellos before RFC 3546 end after the compression methods.
        return Ok(Vec::new());
    }
    let mut list = Reader::new(r.vec16("extensions")?);
    let mut out = Vec::new();
    while !list.is_empty() {
        let kind = ExtensionType(list.u16("extension type")?);
        let data = list.vec16("extension data")?;
        out.push(Extension { kind, data });
    }
    Ok(out)
}

/// A 32-byte field that the reader already took at that length.
fn random32(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(bytes);
    out
}

/// A ClientHello as sent: legacy fields, offered suites and raw extensions in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello<'a> {
    /// `legacy_version` (the client's highest version before TLS 1.3).
    pub legacy_version: TlsVersion,
    /// The client random: what key log files file a session's secrets under. An SSLv2-format
    /// hello's challenge, right-aligned and zero-filled as TLS servers read it.
    pub random: [u8; 32],
    /// The session id the client offers to resume (empty for a new session).
    pub session_id: &'a [u8],
    /// Offered cipher suites in preference order, GREASE included.
    pub cipher_suites: Vec<CipherSuite>,
    /// Offered compression methods (`0` is none; `1` is DEFLATE).
    pub compression_methods: &'a [u8],
    /// Extensions in wire order, GREASE included.
    pub extensions: Vec<Extension<'a>>,
    /// True when the hello came in the SSLv2-compatible record format (RFC 5246 appendix E.2).
    pub sslv2_format: bool,
}

impl<'a> ClientHello<'a> {
    /// Reads the body of a `client_hello` handshake message.
    pub fn parse(body: &'a [u8]) -> Result<Self, HandshakeError> {
        let mut r = Reader::new(body);
        let legacy_version = TlsVersion(r.u16("client_version")?);
        let random = random32(r.take(32, "random")?);
        let session_id = r.vec8("session_id")?;
        let suites = r.vec16("cipher_suites")?;
        let cipher_suites = u16_values(suites, "cipher_suites")?
            .into_iter()
            .map(CipherSuite)
            .collect();
        let compression_methods = r.vec8("compression_methods")?;
        let extensions = extensions(&mut r)?;
        Ok(ClientHello {
            legacy_version,
            random,
            session_id,
            cipher_suites,
            compression_methods,
            extensions,
            sslv2_format: false,
        })
    }

    /// Reads an SSLv2-format CLIENT-HELLO (the record after its two-byte length header).
    ///
    /// Only cipher specs that map to TLS suites (first byte zero) are kept; SSLv2-only specs
    /// have no TLS code point.
    pub fn parse_sslv2(body: &'a [u8]) -> Result<Self, HandshakeError> {
        let mut r = Reader::new(body);
        if r.u8("msg_type")? != 1 {
            return Err(HandshakeError::Invalid {
                field: "msg_type",
                reason: "not an SSLv2 CLIENT-HELLO",
            });
        }
        let legacy_version = TlsVersion(r.u16("version")?);
        let spec_len = usize::from(r.u16("cipher_spec_length")?);
        let session_len = usize::from(r.u16("session_id_length")?);
        let challenge_len = usize::from(r.u16("challenge_length")?);
        if !spec_len.is_multiple_of(3) {
            return Err(HandshakeError::Invalid {
                field: "cipher_specs",
                reason: "length is not a multiple of three",
            });
        }
        let specs = r.take(spec_len, "cipher_specs")?;
        let session_id = r.take(session_len, "session_id")?;
        let challenge = r.take(challenge_len, "challenge")?;
        // RFC 5246 E.2: the challenge becomes the low-order bytes of the random.
        let mut random = [0u8; 32];
        let kept = &challenge[challenge.len().saturating_sub(32)..];
        random[32 - kept.len()..].copy_from_slice(kept);
        let cipher_suites = specs
            .chunks_exact(3)
            .filter(|s| s[0] == 0)
            .map(|s| CipherSuite(u16::from_be_bytes([s[1], s[2]])))
            .collect();
        Ok(ClientHello {
            legacy_version,
            random,
            session_id,
            cipher_suites,
            compression_methods: &[],
            extensions: Vec::new(),
            sslv2_format: true,
        })
    }

    /// The first extension of type `kind`.
    pub fn extension(&self, kind: ExtensionType) -> Option<&'a [u8]> {
        self.extensions
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.data)
    }
}

/// The HelloRetryRequest marker: a ServerHello whose random is SHA-256("HelloRetryRequest")
/// (RFC 8446 section 4.1.3).
const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// A ServerHello (or TLS 1.3 HelloRetryRequest) as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello<'a> {
    /// `legacy_version` (`0x0303` in TLS 1.3, where the real choice is in `supported_versions`).
    pub legacy_version: TlsVersion,
    /// True when this is a TLS 1.3 HelloRetryRequest rather than a real ServerHello.
    pub hello_retry_request: bool,
    /// The server random (half of the TLS 1.2 key block's seed).
    pub random: [u8; 32],
    /// The session id the server assigned or resumed.
    pub session_id: &'a [u8],
    /// The chosen cipher suite.
    pub cipher_suite: CipherSuite,
    /// The chosen compression method.
    pub compression_method: u8,
    /// Extensions in wire order.
    pub extensions: Vec<Extension<'a>>,
}

impl<'a> ServerHello<'a> {
    /// Reads the body of a `server_hello` handshake message.
    pub fn parse(body: &'a [u8]) -> Result<Self, HandshakeError> {
        let mut r = Reader::new(body);
        let legacy_version = TlsVersion(r.u16("server_version")?);
        let random = r.take(32, "random")?;
        let session_id = r.vec8("session_id")?;
        let cipher_suite = CipherSuite(r.u16("cipher_suite")?);
        let compression_method = r.u8("compression_method")?;
        let extensions = extensions(&mut r)?;
        Ok(ServerHello {
            legacy_version,
            hello_retry_request: random == HELLO_RETRY_RANDOM,
            random: random32(random),
            session_id,
            cipher_suite,
            compression_method,
            extensions,
        })
    }

    /// The first extension of type `kind`.
    pub fn extension(&self, kind: ExtensionType) -> Option<&'a [u8]> {
        self.extensions
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.data)
    }

    /// The version from `supported_versions` (TLS 1.3 and later), if the server sent one.
    pub fn selected_version(&self) -> Result<Option<TlsVersion>, HandshakeError> {
        let Some(data) = self.extension(ExtensionType::SUPPORTED_VERSIONS) else {
            return Ok(None);
        };
        let mut r = Reader::new(data);
        let v = r.u16("supported_versions")?;
        expect_end(&r, "supported_versions")?;
        Ok(Some(TlsVersion(v)))
    }

    /// The negotiated version: `supported_versions` when present, else `legacy_version`.
    pub fn negotiated_version(&self) -> TlsVersion {
        self.selected_version()
            .ok()
            .flatten()
            .unwrap_or(self.legacy_version)
    }

    /// The protocol the server picked by ALPN.
    pub fn alpn(&self) -> Result<Option<&'a [u8]>, HandshakeError> {
        let Some(data) = self.extension(ExtensionType::ALPN) else {
            return Ok(None);
        };
        let names = alpn_names(data)?;
        match names.as_slice() {
            [one] => Ok(Some(one)),
            _ => Err(HandshakeError::Invalid {
                field: "application_layer_protocol_negotiation",
                reason: "a server must select exactly one protocol",
            }),
        }
    }
}

/// The host name of a `server_name` extension (the first entry of type host_name).
pub fn server_name(data: &[u8]) -> Result<Option<&[u8]>, HandshakeError> {
    let mut outer = Reader::new(data);
    let mut list = Reader::new(outer.vec16("server_name_list")?);
    expect_end(&outer, "server_name_list")?;
    while !list.is_empty() {
        let name_type = list.u8("server_name type")?;
        let name = list.vec16("server_name")?;
        if name_type == 0 {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// The protocol names of an ALPN extension, in order.
pub fn alpn_names(data: &[u8]) -> Result<Vec<&[u8]>, HandshakeError> {
    let mut outer = Reader::new(data);
    let mut list = Reader::new(outer.vec16("protocol_name_list")?);
    expect_end(&outer, "protocol_name_list")?;
    let mut out = Vec::new();
    while !list.is_empty() {
        out.push(list.vec8("protocol_name")?);
    }
    Ok(out)
}

/// A list of 16-bit code points with a two-byte length prefix (supported_groups,
/// signature_algorithms).
pub fn u16_list(data: &[u8], field: &'static str) -> Result<Vec<u16>, HandshakeError> {
    let mut r = Reader::new(data);
    let values = u16_values(r.vec16(field)?, field)?;
    expect_end(&r, field)?;
    Ok(values)
}

/// The versions of a ClientHello `supported_versions` extension, in order.
pub fn client_supported_versions(data: &[u8]) -> Result<Vec<u16>, HandshakeError> {
    let mut r = Reader::new(data);
    let values = u16_values(r.vec8("supported_versions")?, "supported_versions")?;
    expect_end(&r, "supported_versions")?;
    Ok(values)
}

/// The point formats of an `ec_point_formats` extension.
pub fn point_formats(data: &[u8]) -> Result<&[u8], HandshakeError> {
    let mut r = Reader::new(data);
    let formats = r.vec8("ec_point_formats")?;
    expect_end(&r, "ec_point_formats")?;
    Ok(formats)
}

/// The DER certificates of a TLS 1.2-style Certificate message, leaf first.
pub fn certificate_list(body: &[u8]) -> Result<Vec<&[u8]>, HandshakeError> {
    let mut outer = Reader::new(body);
    let mut list = Reader::new(outer.vec24("certificate_list")?);
    expect_end(&outer, "certificate_list")?;
    let mut out = Vec::new();
    while !list.is_empty() {
        out.push(list.vec24("certificate")?);
    }
    Ok(out)
}

/// Reads a TLS 1.3 Certificate message (RFC 8446 4.4.2): a request context, then entries
/// that each carry a certificate and extensions of its own; returns the certificates in order.
pub fn certificate_list_tls13(body: &[u8]) -> Result<Vec<&[u8]>, HandshakeError> {
    let mut outer = Reader::new(body);
    outer.vec8("certificate_request_context")?;
    let mut list = Reader::new(outer.vec24("certificate_list")?);
    expect_end(&outer, "certificate_list")?;
    let mut out = Vec::new();
    while !list.is_empty() {
        out.push(list.vec24("certificate")?);
        list.vec16("certificate extensions")?;
    }
    Ok(out)
}

/// Reads a TLS 1.3 EncryptedExtensions message (RFC 8446 4.3.1): its extensions in order.
pub fn encrypted_extensions(body: &[u8]) -> Result<Vec<Extension<'_>>, HandshakeError> {
    let mut r = Reader::new(body);
    if r.is_empty() {
        return Err(HandshakeError::Truncated {
            field: "extensions",
        });
    }
    let exts = extensions(&mut r)?;
    expect_end(&r, "encrypted_extensions")?;
    Ok(exts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tls::testutil::{ClientHelloSpec, ServerHelloSpec};

    #[test]
    fn reads_tls13_certificate_and_encrypted_extensions() {
        // context "", two entries: cert "AB" with no extensions, cert "C" with one 2-byte block.
        let body = [
            0, 0, 0, 15, 0, 0, 2, b'A', b'B', 0, 0, 0, 0, 1, b'C', 0, 2, 9, 9,
        ];
        let certs = certificate_list_tls13(&body).unwrap();
        assert_eq!(certs, vec![&b"AB"[..], &b"C"[..]]);
        assert!(certificate_list_tls13(&body[..body.len() - 1]).is_err());
        // ALPN "smtp" and an empty server_name acknowledgement.
        let ee = [0, 13, 0, 16, 0, 5, 0, 3, 2, b'h', b'2', 0, 0, 0, 0];
        let exts = encrypted_extensions(&ee).unwrap();
        assert_eq!(exts.len(), 2);
        assert_eq!(exts[0].kind, ExtensionType::ALPN);
        assert_eq!(exts[1].kind, ExtensionType::SERVER_NAME);
        assert!(encrypted_extensions(&ee[..5]).is_err());
    }

    #[test]
    fn reads_a_client_hello() {
        let spec = ClientHelloSpec::modern();
        let body = spec.body();
        let ch = ClientHello::parse(&body).unwrap();
        assert_eq!(ch.legacy_version, TlsVersion::TLS12);
        assert_eq!(ch.cipher_suites.len(), spec.ciphers.len());
        assert_eq!(ch.extensions.len(), spec.extensions().len());
        let sni = ch.extension(ExtensionType::SERVER_NAME).unwrap();
        assert_eq!(server_name(sni).unwrap(), Some(&b"mail.example.org"[..]));
        let alpn = ch.extension(ExtensionType::ALPN).unwrap();
        assert_eq!(alpn_names(alpn).unwrap(), vec![&b"smtp"[..], &b"h2"[..]]);
        let sv = ch.extension(ExtensionType::SUPPORTED_VERSIONS).unwrap();
        assert_eq!(
            client_supported_versions(sv).unwrap(),
            vec![0x2a2a, 0x0304, 0x0303]
        );
    }

    #[test]
    fn client_hello_without_extensions_is_valid() {
        let mut spec = ClientHelloSpec::modern();
        spec.omit_extensions = true;
        let body = spec.body();
        let ch = ClientHello::parse(&body).unwrap();
        assert!(ch.extensions.is_empty());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let body = ClientHelloSpec::modern().body();
        for cut in 0..body.len() {
            // Cutting exactly after the compression methods yields a valid old-style hello.
            let _ = ClientHello::parse(&body[..cut]);
        }
        assert!(ClientHello::parse(&body[..10]).is_err());
        let sh = ServerHelloSpec::tls13().body();
        for cut in 0..sh.len() {
            let _ = ServerHello::parse(&sh[..cut]);
        }
        assert!(matches!(
            ServerHello::parse(&sh[..20]),
            Err(HandshakeError::Truncated { field: "random" })
        ));
    }

    #[test]
    fn reads_server_hello_version_and_alpn() {
        let sh_body = ServerHelloSpec::tls13().body();
        let sh = ServerHello::parse(&sh_body).unwrap();
        assert_eq!(sh.legacy_version, TlsVersion::TLS12);
        assert_eq!(sh.negotiated_version(), TlsVersion::TLS13);
        assert_eq!(sh.cipher_suite, CipherSuite(0x1301));
        assert!(!sh.hello_retry_request);
        assert_eq!(sh.alpn().unwrap(), Some(&b"smtp"[..]));
    }

    #[test]
    fn detects_hello_retry_request() {
        let mut spec = ServerHelloSpec::tls13();
        spec.random = HELLO_RETRY_RANDOM;
        let body = spec.body();
        assert!(ServerHello::parse(&body).unwrap().hello_retry_request);
    }

    #[test]
    fn reads_an_sslv2_client_hello() {
        // msg_type 1, version 3.1, 3 cipher specs (one SSLv2-only), no session id, 16-byte challenge.
        let mut body = vec![1, 3, 1, 0, 9, 0, 0, 0, 16];
        body.extend_from_slice(&[0x07, 0x00, 0xc0, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x0a]);
        body.extend_from_slice(&[0xaa; 16]);
        let ch = ClientHello::parse_sslv2(&body).unwrap();
        assert!(ch.sslv2_format);
        assert_eq!(ch.legacy_version, TlsVersion::TLS10);
        assert_eq!(
            ch.cipher_suites,
            vec![CipherSuite(0x002f), CipherSuite(0x000a)]
        );
        assert!(ClientHello::parse_sslv2(&body[..body.len() - 1]).is_err());
        body[0] = 2;
        assert!(ClientHello::parse_sslv2(&body).is_err());
    }

    #[test]
    fn rejects_malformed_lists() {
        assert!(u16_list(&[0, 3, 0, 1, 2], "supported_groups").is_err());
        assert!(u16_list(&[0, 2, 0, 23, 9], "supported_groups").is_err());
        assert_eq!(
            u16_list(&[0, 2, 0, 23], "supported_groups").unwrap(),
            vec![23]
        );
        assert!(alpn_names(&[0, 3, 5, b'a', b'b']).is_err());
        assert!(server_name(&[0, 5, 0, 0, 9, b'a', b'b']).is_err());
        assert_eq!(certificate_list(&[0, 0, 0]).unwrap(), Vec::<&[u8]>::new());
        assert!(certificate_list(&[0, 0, 4, 0, 0, 2, 1]).is_err());
    }
}
