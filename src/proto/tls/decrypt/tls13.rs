//! TLS 1.3 key schedule from traffic secrets (RFC 8446 §7.1–7.3) and record deprotection (§5).

use super::DecryptError;
use super::crypto::{AeadKey, TAG_LEN, hkdf_expand};
use super::suite::{HashAlg, SuiteParams};

/// The record header's type for every protected TLS 1.3 record.
const OPAQUE_TYPE: u8 = 23;

/// HKDF-Expand-Label (RFC 8446 §7.1): expands `secret` under `"tls13 " + label` and `context`.
pub fn hkdf_expand_label(
    hash: HashAlg,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Result<Vec<u8>, DecryptError> {
    let full_label_len = 6 + label.len();
    let (Ok(out_len), Ok(label_len), Ok(context_len)) = (
        u16::try_from(len),
        u8::try_from(full_label_len),
        u8::try_from(context.len()),
    ) else {
        return Err(DecryptError::BadKeyLength);
    };
    let mut info = Vec::with_capacity(4 + full_label_len + context.len());
    info.extend_from_slice(&out_len.to_be_bytes());
    info.push(label_len);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(context_len);
    info.extend_from_slice(context);
    hkdf_expand(hash, secret, &info, len)
}

/// The write key and IV derived from one traffic secret (RFC 8446 §7.3).
#[derive(Clone, PartialEq, Eq)]
pub struct TrafficKeys {
    /// The AEAD key.
    pub key: Vec<u8>,
    /// The per-connection IV that record nonces are made from.
    pub iv: [u8; 12],
}

// Key material stays out of debug output.
impl std::fmt::Debug for TrafficKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrafficKeys")
            .field("key_len", &self.key.len())
            .finish()
    }
}

impl TrafficKeys {
    /// The key and IV of `secret` for `params`' AEAD.
    pub fn derive(params: &SuiteParams, secret: &[u8]) -> Result<Self, DecryptError> {
        if secret.len() != params.hash.output_len() {
            return Err(DecryptError::BadKeyLength);
        }
        let key = hkdf_expand_label(params.hash, secret, b"key", &[], params.cipher.key_len())?;
        let iv = hkdf_expand_label(params.hash, secret, b"iv", &[], 12)?;
        let iv = iv.try_into().map_err(|_| DecryptError::BadKeyLength)?;
        Ok(TrafficKeys { key, iv })
    }
}

/// The traffic secret after a KeyUpdate (RFC 8446 §7.2).
pub fn next_traffic_secret(hash: HashAlg, secret: &[u8]) -> Result<Vec<u8>, DecryptError> {
    hkdf_expand_label(hash, secret, b"traffic upd", &[], hash.output_len())
}

/// The nonce of record `seq`: the IV XORed with the big-endian sequence number (RFC 8446 §5.3,
/// RFC 7905 §2 for TLS 1.2 ChaCha20-Poly1305).
pub fn record_nonce(iv: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut nonce = *iv;
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    nonce
}

/// One direction's protected TLS 1.3 records, opened in order.
#[derive(Debug, Clone)]
pub struct Tls13RecordDecrypter {
    params: SuiteParams,
    secret: Vec<u8>,
    aead: AeadKey,
    iv: [u8; 12],
    seq: u64,
}

impl Tls13RecordDecrypter {
    /// A decrypter for records protected under traffic `secret`, from sequence number 0.
    pub fn new(params: SuiteParams, secret: &[u8]) -> Result<Self, DecryptError> {
        let keys = TrafficKeys::derive(&params, secret)?;
        Ok(Tls13RecordDecrypter {
            params,
            secret: secret.to_vec(),
            aead: AeadKey::new(params.cipher, &keys.key)?,
            iv: keys.iv,
            seq: 0,
        })
    }

    /// The sequence number the next record will be opened with.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// Passes over `n` sequence numbers: records the sender protected but that did not open
    /// here (damaged on the way).
    pub fn skip(&mut self, n: u64) {
        self.seq = self.seq.saturating_add(n);
    }

    /// Moves to the next generation of traffic keys after a KeyUpdate from this direction.
    pub fn key_update(&mut self) -> Result<(), DecryptError> {
        let secret = next_traffic_secret(self.params.hash, &self.secret)?;
        *self = Tls13RecordDecrypter::new(self.params, &secret)?;
        Ok(())
    }

    /// Opens one record whose 5-byte header is `header` and body `body`: the inner content
    /// type and the content, padding stripped (RFC 8446 §5.4).
    ///
    /// The sequence number advances only when the record authenticates, so a forged or
    /// damaged record does not desynchronise the ones after it.
    pub fn open(&mut self, header: &[u8; 5], body: &[u8]) -> Result<(u8, Vec<u8>), DecryptError> {
        if body.len() < TAG_LEN + 1 {
            return Err(DecryptError::Truncated);
        }
        let next = self
            .seq
            .checked_add(1)
            .ok_or(DecryptError::SequenceExhausted)?;
        let nonce = record_nonce(&self.iv, self.seq);
        let mut inner = self.aead.open(&nonce, header, body)?;
        self.seq = next;
        let end = inner
            .iter()
            .rposition(|&b| b != 0)
            .ok_or(DecryptError::NoContentType)?;
        let content_type = inner[end];
        inner.truncate(end);
        Ok((content_type, inner))
    }

    /// The header a protected record of `body_len` bytes carries (what the AAD is).
    pub fn header(body_len: u16) -> [u8; 5] {
        let len = body_len.to_be_bytes();
        [OPAQUE_TYPE, 3, 3, len[0], len[1]]
    }
}
