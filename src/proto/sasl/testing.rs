//! Test helpers: NTLMSSP message builders and the NTLM / CRAM-MD5 computations, done with
//! independent primitives (md4, md-5, hmac, des) so tests can check decoded values against a
//! known password.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use des::cipher::{BlockCipherEncrypt, KeyInit as _};
use hmac::{Hmac, Mac as _};
use md4::Digest as _;

/// NTLMSSP_NEGOTIATE_UNICODE.
pub(crate) const UNICODE: u32 = 0x0000_0001;
/// NTLMSSP_NEGOTIATE_OEM.
pub(crate) const OEM: u32 = 0x0000_0002;
/// NTLMSSP_NEGOTIATE_NTLM.
pub(crate) const NTLM: u32 = 0x0000_0200;
/// NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY.
pub(crate) const ESS: u32 = 0x0008_0000;

/// Standard base64, as clients send it.
pub(crate) fn b64(data: impl AsRef<[u8]>) -> String {
    STANDARD.encode(data)
}

/// UTF-16LE bytes of `s`.
pub(crate) fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// HMAC-MD5 of the concatenated `parts`.
pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = Hmac::<md5::Md5>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// MD5 of the concatenated `parts`.
pub(crate) fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut hasher = md5::Md5::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The NT hash: MD4 of the UTF-16LE password.
pub(crate) fn nt_hash(password: &str) -> [u8; 16] {
    md4::Md4::digest(utf16le(password)).into()
}

/// NTOWFv2: HMAC-MD5 keyed by the NT hash over UTF-16LE(uppercase(user) + domain).
pub(crate) fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let identity = utf16le(&format!("{}{}", user.to_uppercase(), domain));
    hmac_md5(&nt_hash(password), &[&identity])
}

/// An NTLMv2 client blob: header, timestamp, client challenge, and an AV pair list.
pub(crate) fn ntlmv2_blob(client_challenge: [u8; 8], av_domain: &str) -> Vec<u8> {
    let mut blob = vec![0x01, 0x01, 0, 0, 0, 0, 0, 0];
    blob.extend_from_slice(&0x01d9_0000_1234_5678u64.to_le_bytes());
    blob.extend_from_slice(&client_challenge);
    blob.extend_from_slice(&[0; 4]);
    let name = utf16le(av_domain);
    blob.extend_from_slice(&2u16.to_le_bytes()); // MsvAvNbDomainName
    blob.extend_from_slice(&u16::try_from(name.len()).expect("short name").to_le_bytes());
    blob.extend_from_slice(&name);
    blob.extend_from_slice(&[0; 4]); // MsvAvEOL
    blob.extend_from_slice(&[0; 4]);
    blob
}

/// The NTLMv2 response: NTProofStr followed by the blob.
pub(crate) fn ntlmv2_response(
    password: &str,
    user: &str,
    domain: &str,
    server_challenge: [u8; 8],
    blob: &[u8],
) -> Vec<u8> {
    let key = ntowf_v2(password, user, domain);
    let mut response = hmac_md5(&key, &[&server_challenge, blob]).to_vec();
    response.extend_from_slice(blob);
    response
}

/// The NTLMv1 response: the NT hash, zero-padded to 21 bytes, as three DES keys over `data`.
pub(crate) fn ntlmv1_response(password: &str, data: [u8; 8]) -> [u8; 24] {
    let mut key_material = [0u8; 21];
    key_material[..16].copy_from_slice(&nt_hash(password));
    let mut response = [0u8; 24];
    for (seven, out) in key_material.chunks(7).zip(response.chunks_mut(8)) {
        let cipher = des::Des::new_from_slice(&des_key(seven)).expect("8-byte key");
        let mut block = des::cipher::Block::<des::Des>::from(data);
        cipher.encrypt_block(&mut block);
        out.copy_from_slice(&block);
    }
    response
}

/// Spreads 56 key bits over 8 bytes, leaving the (ignored) parity bit of each byte clear.
fn des_key(seven: &[u8]) -> [u8; 8] {
    let bits = seven.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    std::array::from_fn(|i| (((bits >> (49 - 7 * i)) & 0x7f) as u8) << 1)
}

fn put_header(m: &mut Vec<u8>, kind: u32) {
    m.extend_from_slice(b"NTLMSSP\0");
    m.extend_from_slice(&kind.to_le_bytes());
}

fn put_secbuf(m: &mut Vec<u8>, len: usize, offset: usize) {
    let len = u16::try_from(len).expect("field fits a u16");
    let offset = u32::try_from(offset).expect("offset fits a u32");
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&offset.to_le_bytes());
}

/// A Type 1 message with OEM domain and workstation names.
pub(crate) fn type1(flags: u32, domain: &str, workstation: &str) -> Vec<u8> {
    let flags = flags | 0x1000 | 0x2000;
    let mut m = Vec::new();
    put_header(&mut m, 1);
    m.extend_from_slice(&flags.to_le_bytes());
    put_secbuf(&mut m, domain.len(), 32);
    put_secbuf(&mut m, workstation.len(), 32 + domain.len());
    m.extend_from_slice(domain.as_bytes());
    m.extend_from_slice(workstation.as_bytes());
    m
}

/// A Type 2 message carrying `challenge`, with a UTF-16LE target name.
pub(crate) fn type2(flags: u32, challenge: [u8; 8], target: &str) -> Vec<u8> {
    let target = utf16le(target);
    let mut m = Vec::new();
    put_header(&mut m, 2);
    put_secbuf(&mut m, target.len(), 48);
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&challenge);
    m.extend_from_slice(&[0; 8]);
    put_secbuf(&mut m, 0, 48);
    m.extend_from_slice(&target);
    m
}

/// The fields of a Type 3 message to build.
pub(crate) struct Type3<'a> {
    pub(crate) flags: u32,
    pub(crate) lm: &'a [u8],
    pub(crate) nt: &'a [u8],
    pub(crate) domain: &'a str,
    pub(crate) user: &'a str,
    pub(crate) workstation: &'a str,
}

/// A Type 3 message in the modern layout (64-byte header, version, then payload); strings
/// in UTF-16LE when `flags` has the Unicode bit, else in ASCII.
pub(crate) fn type3(t: &Type3<'_>) -> Vec<u8> {
    let encode = |s: &str| {
        if t.flags & UNICODE != 0 {
            utf16le(s)
        } else {
            s.as_bytes().to_vec()
        }
    };
    let fields = [
        t.lm.to_vec(),
        t.nt.to_vec(),
        encode(t.domain),
        encode(t.user),
        encode(t.workstation),
        Vec::new(), // session key
    ];
    let mut m = Vec::new();
    put_header(&mut m, 3);
    let mut offset = 72;
    for field in &fields {
        put_secbuf(&mut m, field.len(), offset);
        offset += field.len();
    }
    m.extend_from_slice(&t.flags.to_le_bytes());
    m.extend_from_slice(&[6, 1, 0x50, 0x1d, 0, 0, 0, 15]); // version
    for field in &fields {
        m.extend_from_slice(field);
    }
    m
}
