//! TLS 1.2 record deprotection: AES-GCM (RFC 5288), ChaCha20-Poly1305 (RFC 7905) and AES-CBC
//! with HMAC, MAC-then-encrypt (RFC 5246 §6.2.3.2) or encrypt-then-MAC (RFC 7366).

use super::DecryptError;
use super::crypto::{AeadKey, TAG_LEN, aes_cbc_decrypt, hmac};
use super::prf::WriteKeys;
use super::suite::{BulkCipher, HashAlg, SuiteParams};
use super::tls13::record_nonce;

/// The AES block size, which is also a TLS 1.2 CBC record's explicit IV length.
const BLOCK: usize = 16;
/// The explicit per-record nonce of the GCM suites.
const GCM_EXPLICIT: usize = 8;

#[derive(Clone)]
enum Protection {
    Aead {
        key: AeadKey,
        iv: Vec<u8>,
    },
    Cbc {
        key: Vec<u8>,
        mac: HashAlg,
        mac_key: Vec<u8>,
    },
}

/// One direction's protected TLS 1.2 records, opened in order.
#[derive(Clone)]
pub struct Tls12RecordDecrypter {
    cipher: BulkCipher,
    protection: Protection,
    encrypt_then_mac: bool,
    seq: u64,
}

// Key material stays out of debug output.
impl std::fmt::Debug for Tls12RecordDecrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls12RecordDecrypter")
            .field("cipher", &self.cipher)
            .field("encrypt_then_mac", &self.encrypt_then_mac)
            .field("seq", &self.seq)
            .finish()
    }
}

/// The MAC input prefix and AEAD additional data: seq, type, version and a length.
fn pseudo_header(seq: u64, content_type: u8, version: [u8; 2], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(13);
    out.extend_from_slice(&seq.to_be_bytes());
    out.push(content_type);
    out.extend_from_slice(&version);
    // Record bodies are at most 2^14 + 2048 bytes, so the length always fits.
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    out
}

/// Comparison whose time does not depend on where the MACs differ.
fn mac_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tls12RecordDecrypter {
    /// A decrypter for one direction's `keys` from sequence number 0 (the first record after
    /// that direction's ChangeCipherSpec). `encrypt_then_mac` is whether both hellos carried
    /// the extension; it matters for CBC suites only.
    pub fn new(
        params: &SuiteParams,
        keys: &WriteKeys,
        encrypt_then_mac: bool,
    ) -> Result<Self, DecryptError> {
        let protection = match params.cipher {
            BulkCipher::Aes128Cbc(mac) | BulkCipher::Aes256Cbc(mac) => {
                if keys.key.len() != params.cipher.key_len()
                    || keys.mac_key.len() != mac.output_len()
                {
                    return Err(DecryptError::BadKeyLength);
                }
                Protection::Cbc {
                    key: keys.key.clone(),
                    mac,
                    mac_key: keys.mac_key.clone(),
                }
            }
            aead => {
                let iv_len = if aead == BulkCipher::ChaCha20Poly1305 {
                    12
                } else {
                    4
                };
                if keys.iv.len() != iv_len {
                    return Err(DecryptError::BadKeyLength);
                }
                Protection::Aead {
                    key: AeadKey::new(aead, &keys.key)?,
                    iv: keys.iv.clone(),
                }
            }
        };
        Ok(Tls12RecordDecrypter {
            cipher: params.cipher,
            protection,
            encrypt_then_mac,
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

    /// Opens one record whose 5-byte header is `header` and body `body`: its plaintext.
    ///
    /// The sequence number advances only when the record authenticates.
    pub fn open(&mut self, header: &[u8; 5], body: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let next = self
            .seq
            .checked_add(1)
            .ok_or(DecryptError::SequenceExhausted)?;
        let content_type = header[0];
        let version = [header[1], header[2]];
        let plain = match &self.protection {
            Protection::Aead { key, iv } if self.cipher == BulkCipher::ChaCha20Poly1305 => {
                let plain_len = body
                    .len()
                    .checked_sub(TAG_LEN)
                    .ok_or(DecryptError::Truncated)?;
                let iv: [u8; 12] = iv
                    .as_slice()
                    .try_into()
                    .map_err(|_| DecryptError::BadKeyLength)?;
                let aad = pseudo_header(self.seq, content_type, version, plain_len);
                key.open(&record_nonce(&iv, self.seq), &aad, body)?
            }
            Protection::Aead { key, iv } => {
                if body.len() < GCM_EXPLICIT + TAG_LEN {
                    return Err(DecryptError::Truncated);
                }
                let (explicit, sealed) = body.split_at(GCM_EXPLICIT);
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(iv);
                nonce[4..].copy_from_slice(explicit);
                let aad = pseudo_header(self.seq, content_type, version, sealed.len() - TAG_LEN);
                key.open(&nonce, &aad, sealed)?
            }
            Protection::Cbc { key, mac, mac_key } => {
                if self.encrypt_then_mac {
                    self.open_etm(key, *mac, mac_key, content_type, version, body)?
                } else {
                    self.open_mte(key, *mac, mac_key, content_type, version, body)?
                }
            }
        };
        self.seq = next;
        Ok(plain)
    }

    /// RFC 7366: the MAC covers IV and ciphertext and is checked before decrypting.
    fn open_etm(
        &self,
        key: &[u8],
        mac: HashAlg,
        mac_key: &[u8],
        content_type: u8,
        version: [u8; 2],
        body: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let encrypted_len = body
            .len()
            .checked_sub(mac.output_len())
            .filter(|&n| n >= 2 * BLOCK && n.is_multiple_of(BLOCK))
            .ok_or(DecryptError::Truncated)?;
        let (encrypted, tag) = body.split_at(encrypted_len);
        let prefix = pseudo_header(self.seq, content_type, version, encrypted_len);
        if !mac_equal(&hmac(mac, mac_key, &[&prefix, encrypted]), tag) {
            return Err(DecryptError::BadRecordMac);
        }
        let (iv, ciphertext) = encrypted.split_at(BLOCK);
        let mut plain = ciphertext.to_vec();
        aes_cbc_decrypt(key, iv, &mut plain)?;
        let unpadded = strip_padding(&plain).ok_or(DecryptError::BadRecordMac)?;
        plain.truncate(unpadded);
        Ok(plain)
    }

    /// RFC 5246 §6.2.3.2: decrypt, strip padding, then check the MAC over the plaintext.
    fn open_mte(
        &self,
        key: &[u8],
        mac: HashAlg,
        mac_key: &[u8],
        content_type: u8,
        version: [u8; 2],
        body: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        if body.len() < BLOCK + (mac.output_len() + 1).next_multiple_of(BLOCK)
            || !body.len().is_multiple_of(BLOCK)
        {
            return Err(DecryptError::Truncated);
        }
        let (iv, ciphertext) = body.split_at(BLOCK);
        let mut plain = ciphertext.to_vec();
        aes_cbc_decrypt(key, iv, &mut plain)?;
        // Bad padding and a bad MAC are one error: both mean the record did not authenticate.
        let unpadded = strip_padding(&plain).ok_or(DecryptError::BadRecordMac)?;
        let content_len = unpadded
            .checked_sub(mac.output_len())
            .ok_or(DecryptError::BadRecordMac)?;
        let (content, tag) = plain[..unpadded].split_at(content_len);
        let prefix = pseudo_header(self.seq, content_type, version, content_len);
        if !mac_equal(&hmac(mac, mac_key, &[&prefix, content]), tag) {
            return Err(DecryptError::BadRecordMac);
        }
        plain.truncate(content_len);
        Ok(plain)
    }
}

/// The length of `plain` without its TLS CBC padding (every padding byte, and the length byte
/// after them, equal the padding length), or `None` when the padding is malformed.
fn strip_padding(plain: &[u8]) -> Option<usize> {
    let &pad = plain.last()?;
    let total = usize::from(pad) + 1;
    let start = plain.len().checked_sub(total)?;
    plain[start..].iter().all(|&b| b == pad).then_some(start)
}
