//! Published vectors (RFC 8448, RFC 8439, the GCM specification, SP 800-38A, the TLS 1.2 PRF
//! vectors of the IETF TLS list) and TLS 1.2 records sealed here with the same primitives.

use super::crypto::{AeadKey, aes_cbc_decrypt, hmac};
use super::prf::{WriteKeys, key_block, p_hash, prf};
use super::tls13::{TrafficKeys, hkdf_expand_label, next_traffic_secret, record_nonce};
use super::*;
use crate::proto::tls::CipherSuite;
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, KeyInit};

fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

fn split_record(record: &[u8]) -> ([u8; 5], &[u8]) {
    let (header, body) = record.split_at(5);
    assert_eq!(
        usize::from(u16::from_be_bytes([header[3], header[4]])),
        body.len()
    );
    (header.try_into().unwrap(), body)
}

fn params(suite: u16) -> SuiteParams {
    SuiteParams::for_suite(CipherSuite(suite)).unwrap()
}

// RFC 8448 §3 "Simple 1-RTT Handshake", TLS_AES_128_GCM_SHA256.
const C_HS: &str = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21";
const S_HS: &str = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";
const C_AP: &str = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
const S_AP: &str = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";
const CLIENT_FINISHED: &str = "1703030035 75ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44
    d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546";
const CLIENT_DATA: &str = "1703030043 a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b
    9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4";
const CLIENT_ALERT: &str = "1703030013 c9872760655666b74d7ff1153efd6db6d0b0e3";
const SERVER_TICKET: &str = "17030300de 3a6b8f90414a97d6959c3487680de5134a2b240e6cffac116e95d41d6a
    f8f6b580dcf3d11d63c758db289a015940252f55713e061dc13e078891a38efbcf5753ad8ef170ad3c7353d16d9d
    a773b9ca7f2b9fa1b6c0d4a3d03f75e09c30ba1e62972ac46f75f7b981be63439b2999ce13064615139891d5e4c5
    b406f16e3fc181a77ca475840025db2f0a77f81b5ab05b94c01346755f69232c86519d86cbeeac87aac347d143f9
    605d64f650db4d023e70e952ca49fe5137121c74bc2697687e248746d6df353005f3bce18696129c8153556b3b6c
    6779b37bf15985684f";
const SERVER_DATA: &str = "1703030043 2e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30e
    faf97d90e6dffc602dcb501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d";
const SERVER_ALERT: &str = "1703030013 b58fd67166ebf599d24720cfbe7efa7a8864a9";

#[test]
fn rfc8448_traffic_keys() {
    let p = params(0x1301);
    for (secret, key, iv) in [
        (
            S_HS,
            "3fce516009c21727d0f2e4e86ee403bc",
            "5d313eb2671276ee13000b30",
        ),
        (
            C_HS,
            "dbfaa693d1762c5b666af5d950258d01",
            "5bd3c71b836e0b76bb73265f",
        ),
        (
            C_AP,
            "17422dda596ed5d9acd890e3c63f5051",
            "5b78923dee08579033e523d9",
        ),
        (
            S_AP,
            "9f02283b6c9c07efc26bb9f2ac92e356",
            "cf782b88dd83549aadf1e984",
        ),
    ] {
        let keys = TrafficKeys::derive(&p, &h(secret)).unwrap();
        assert_eq!(hex::encode(&keys.key), key);
        assert_eq!(hex::encode(keys.iv), iv);
    }
    // The server's finished key, the same expansion with another label.
    let finished = hkdf_expand_label(HashAlg::Sha256, &h(S_HS), b"finished", &[], 32).unwrap();
    assert_eq!(
        hex::encode(finished),
        "008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8"
    );
}

#[test]
fn rfc8448_client_records() {
    let p = params(0x1301);
    let mut hs = Tls13RecordDecrypter::new(p, &h(C_HS)).unwrap();
    let record = h(CLIENT_FINISHED);
    let (header, body) = split_record(&record);
    let (kind, finished) = hs.open(&header, body).unwrap();
    assert_eq!(kind, 22);
    assert_eq!(finished.len(), 36);
    assert_eq!(finished[..4], [0x14, 0, 0, 0x20]);

    let mut app = Tls13RecordDecrypter::new(p, &h(C_AP)).unwrap();
    let record = h(CLIENT_DATA);
    let (header, body) = split_record(&record);
    assert_eq!(app.open(&header, body).unwrap(), (23, (0..50).collect()));
    let record = h(CLIENT_ALERT);
    let (header, body) = split_record(&record);
    assert_eq!(app.open(&header, body).unwrap(), (21, vec![1, 0]));
    assert_eq!(app.sequence(), 2);
}

#[test]
fn rfc8448_server_records() {
    let mut app = Tls13RecordDecrypter::new(params(0x1301), &h(S_AP)).unwrap();
    let record = h(SERVER_TICKET);
    let (header, body) = split_record(&record);
    let (kind, ticket) = app.open(&header, body).unwrap();
    // A NewSessionTicket (handshake type 4) of 205 bytes.
    assert_eq!((kind, ticket.len(), ticket[0]), (22, 205, 4));
    let record = h(SERVER_DATA);
    let (header, body) = split_record(&record);
    assert_eq!(app.open(&header, body).unwrap(), (23, (0..50).collect()));
    let record = h(SERVER_ALERT);
    let (header, body) = split_record(&record);
    assert_eq!(app.open(&header, body).unwrap(), (21, vec![1, 0]));
}

#[test]
fn a_tampered_or_misordered_record_fails_and_yields_nothing() {
    let p = params(0x1301);
    let mut app = Tls13RecordDecrypter::new(p, &h(C_AP)).unwrap();
    let mut record = h(CLIENT_DATA);
    record[20] ^= 1;
    let (header, body) = split_record(&record);
    assert_eq!(app.open(&header, body), Err(DecryptError::BadRecordMac));
    // The failure did not consume a sequence number: the genuine record still opens.
    assert_eq!(app.sequence(), 0);
    let record = h(CLIENT_DATA);
    let (header, body) = split_record(&record);
    assert!(app.open(&header, body).is_ok());
    // Replaying it under sequence 1 fails.
    assert_eq!(app.open(&header, body), Err(DecryptError::BadRecordMac));
    // The wrong direction's key fails.
    let mut other = Tls13RecordDecrypter::new(p, &h(S_AP)).unwrap();
    assert_eq!(other.open(&header, body), Err(DecryptError::BadRecordMac));
    // Too short to hold a tag.
    assert_eq!(
        other.open(&Tls13RecordDecrypter::header(4), &[0; 4]),
        Err(DecryptError::Truncated)
    );
}

/// Seals a TLS 1.3 record the way a peer would, with the primitive directly.
fn seal13(key: &[u8], iv: &[u8; 12], seq: u64, content: &[u8], kind: u8, pad: usize) -> Vec<u8> {
    let mut inner = content.to_vec();
    inner.push(kind);
    inner.extend(std::iter::repeat_n(0, pad));
    let header = Tls13RecordDecrypter::header(u16::try_from(inner.len() + 16).unwrap());
    Aes128Gcm::new_from_slice(key)
        .unwrap()
        .encrypt_in_place(&record_nonce(iv, seq).into(), &header, &mut inner)
        .unwrap();
    [&header[..], &inner].concat()
}

#[test]
fn key_update_and_padding() {
    let p = params(0x1301);
    let secret0 = h(C_AP);
    let secret1 = next_traffic_secret(HashAlg::Sha256, &secret0).unwrap();
    assert_eq!(
        secret1,
        hkdf_expand_label(HashAlg::Sha256, &secret0, b"traffic upd", &[], 32).unwrap()
    );
    let keys0 = TrafficKeys::derive(&p, &secret0).unwrap();
    let keys1 = TrafficKeys::derive(&p, &secret1).unwrap();
    assert_ne!(keys0, keys1);

    let mut dec = Tls13RecordDecrypter::new(p, &secret0).unwrap();
    let first = seal13(&keys0.key, &keys0.iv, 0, b"before", 23, 7);
    let (header, body) = split_record(&first);
    assert_eq!(dec.open(&header, body).unwrap(), (23, b"before".to_vec()));
    dec.key_update().unwrap();
    // Keys and sequence number both restart.
    assert_eq!(dec.sequence(), 0);
    let second = seal13(&keys1.key, &keys1.iv, 0, b"after", 23, 0);
    let (header, body) = split_record(&second);
    assert_eq!(dec.open(&header, body).unwrap(), (23, b"after".to_vec()));
    // All-zero inner plaintext carries no content type.
    let empty = seal13(&keys1.key, &keys1.iv, 1, b"", 0, 3);
    let (header, body) = split_record(&empty);
    assert_eq!(dec.open(&header, body), Err(DecryptError::NoContentType));
}

#[test]
fn tls12_prf_vectors() {
    let out = prf(
        HashAlg::Sha256,
        &h("9bbe436ba940f017b17652849a71db35"),
        b"test label",
        &h("a0ba9f936cda311827a6f796ffd5198c"),
        100,
    );
    assert_eq!(
        out,
        h(
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a
           6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab
           4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701
           87347b66"
        )
    );
    let out = prf(
        HashAlg::Sha384,
        &h("b80b733d6ceefcdc71566ea48e5567df"),
        b"test label",
        &h("cd665cf6a8447dd6ff8b27555edb7465"),
        148,
    );
    assert_eq!(
        out,
        h(
            "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cd
           e9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd
           8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425
           9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6
           91c8f3a26854308d5eaa3be85e0990703d73e56f"
        )
    );
}

#[test]
fn key_block_layout() {
    let master = [0x42; 48];
    let (cr, sr) = ([1; 32], [2; 32]);
    let seed = [&sr[..], &cr[..]].concat();
    for (suite, mac, key, iv) in [
        (0xc02f, 0, 16, 4),
        (0xc030, 0, 32, 4),
        (0xcca8, 0, 32, 12),
        (0xc013, 20, 16, 0),
        (0xc028, 48, 32, 0),
    ] {
        let p = params(suite);
        let block = key_block(&p, &master, &cr, &sr).unwrap();
        let raw = prf(
            p.hash,
            &master,
            b"key expansion",
            &seed,
            2 * (mac + key + iv),
        );
        let mut at = 0;
        let mut next = |n: usize| {
            at += n;
            raw[at - n..at].to_vec()
        };
        assert_eq!(block.client.mac_key, next(mac));
        assert_eq!(block.server.mac_key, next(mac));
        assert_eq!(block.client.key, next(key));
        assert_eq!(block.server.key, next(key));
        assert_eq!(block.client.iv, next(iv));
        assert_eq!(block.server.iv, next(iv));
    }
    assert_eq!(
        key_block(&params(0xc02f), &[0; 47], &cr, &sr),
        Err(DecryptError::BadKeyLength)
    );
    // P_hash output is a prefix of itself at any length.
    let long = p_hash(HashAlg::Sha256, b"k", b"s", 80);
    assert_eq!(p_hash(HashAlg::Sha256, b"k", b"s", 33), long[..33]);
}

#[test]
fn suite_table() {
    let cases = [
        (0x1301, BulkCipher::Aes128Gcm, HashAlg::Sha256, true),
        (0x1302, BulkCipher::Aes256Gcm, HashAlg::Sha384, true),
        (0x1303, BulkCipher::ChaCha20Poly1305, HashAlg::Sha256, true),
        (0xc02b, BulkCipher::Aes128Gcm, HashAlg::Sha256, false),
        (0x009d, BulkCipher::Aes256Gcm, HashAlg::Sha384, false),
        (0xcca9, BulkCipher::ChaCha20Poly1305, HashAlg::Sha256, false),
        (
            0x002f,
            BulkCipher::Aes128Cbc(HashAlg::Sha1),
            HashAlg::Sha256,
            false,
        ),
        (
            0xc014,
            BulkCipher::Aes256Cbc(HashAlg::Sha1),
            HashAlg::Sha256,
            false,
        ),
        (
            0xc027,
            BulkCipher::Aes128Cbc(HashAlg::Sha256),
            HashAlg::Sha256,
            false,
        ),
        (
            0xc028,
            BulkCipher::Aes256Cbc(HashAlg::Sha384),
            HashAlg::Sha384,
            false,
        ),
    ];
    for (suite, cipher, hash, tls13) in cases {
        let p = params(suite);
        assert_eq!(
            (p.cipher, p.hash, p.tls13),
            (cipher, hash, tls13),
            "{suite:#06x}"
        );
    }
    // RC4, 3DES, CCM and an unknown code point are not decrypted.
    for suite in [0x0005, 0x000a, 0xc0ac, 0x1304, 0xfefe] {
        assert_eq!(
            SuiteParams::for_suite(CipherSuite(suite)),
            Err(DecryptError::UnsupportedSuite(suite))
        );
    }
}

#[test]
fn aead_vectors() {
    // The GCM specification's test cases 4 (AES-128) and 16 (AES-256).
    let iv: [u8; 12] = h("cafebabefacedbaddecaf888").try_into().unwrap();
    let aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    let plain = h(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
                   1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    );
    let key128 = h("feffe9928665731c6d6a8f9467308308");
    let sealed128 = h(
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
                       21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091
                       5bc94fbc3221a5db94fae95ae7121a47",
    );
    let key256 = [&key128[..], &key128[..]].concat();
    let sealed256 = h(
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
                       8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662
                       76fc6ece0f4e1768cddf8853bb2d551b",
    );
    for (cipher, key, sealed) in [
        (BulkCipher::Aes128Gcm, &key128, &sealed128),
        (BulkCipher::Aes256Gcm, &key256, &sealed256),
    ] {
        let k = AeadKey::new(cipher, key).unwrap();
        assert_eq!(k.open(&iv, &aad, sealed).unwrap(), plain);
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(k.open(&iv, &aad, &bad), Err(DecryptError::BadRecordMac));
        assert_eq!(
            k.open(&iv, &aad[1..], sealed),
            Err(DecryptError::BadRecordMac)
        );
    }
    // RFC 8439 §2.8.2.
    let key = h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    let nonce: [u8; 12] = h("070000004041424344454647").try_into().unwrap();
    let aad = h("50515253c0c1c2c3c4c5c6c7");
    let sealed = h(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
                    3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
                    92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
                    3ff4def08e4b7a9de576d26586cec64b6116
                    1ae10b594f09e26a7e902ecbd0600691",
    );
    let k = AeadKey::new(BulkCipher::ChaCha20Poly1305, &key).unwrap();
    assert_eq!(
        k.open(&nonce, &aad, &sealed).unwrap(),
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for \
          the future, sunscreen would be it."
    );
    assert_eq!(
        k.open(&nonce, &aad, &sealed[..15]),
        Err(DecryptError::Truncated)
    );
}

#[test]
fn aes_cbc_vector() {
    // SP 800-38A F.2.2 (CBC-AES128.Decrypt), first two blocks.
    let key = h("2b7e151628aed2a6abf7158809cf4f3c");
    let iv = h("000102030405060708090a0b0c0d0e0f");
    let mut data = h("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2");
    aes_cbc_decrypt(&key, &iv, &mut data).unwrap();
    assert_eq!(
        data,
        h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    );
}

// TLS 1.2 records sealed by a peer's rules, to check framing, nonces, AAD and MACs.

fn header12(kind: u8, body_len: usize) -> [u8; 5] {
    let len = u16::try_from(body_len).unwrap().to_be_bytes();
    [kind, 3, 3, len[0], len[1]]
}

fn aad12(seq: u64, kind: u8, len: usize) -> Vec<u8> {
    let mut aad = seq.to_be_bytes().to_vec();
    aad.extend_from_slice(&[kind, 3, 3]);
    aad.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    aad
}

fn seal12(p: &SuiteParams, keys: &WriteKeys, etm: bool, seq: u64, kind: u8, msg: &[u8]) -> Vec<u8> {
    use cbc::cipher::block_padding::NoPadding;
    use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
    let body = match p.cipher {
        BulkCipher::Aes128Gcm => {
            let explicit = seq.wrapping_mul(0x9e37_79b9).to_be_bytes();
            let nonce: [u8; 12] = [&keys.iv[..], &explicit].concat().try_into().unwrap();
            let mut buf = msg.to_vec();
            Aes128Gcm::new_from_slice(&keys.key)
                .unwrap()
                .encrypt_in_place(&nonce.into(), &aad12(seq, kind, msg.len()), &mut buf)
                .unwrap();
            [&explicit[..], &buf].concat()
        }
        BulkCipher::ChaCha20Poly1305 => {
            let iv: [u8; 12] = keys.iv.clone().try_into().unwrap();
            let mut buf = msg.to_vec();
            chacha20poly1305::ChaCha20Poly1305::new_from_slice(&keys.key)
                .unwrap()
                .encrypt_in_place(
                    &record_nonce(&iv, seq).into(),
                    &aad12(seq, kind, msg.len()),
                    &mut buf,
                )
                .unwrap();
            buf
        }
        BulkCipher::Aes128Cbc(mac) | BulkCipher::Aes256Cbc(mac) => {
            let iv = [seq as u8 ^ 0x5a; 16];
            let mut plain = msg.to_vec();
            if !etm {
                plain.extend(hmac(
                    mac,
                    &keys.mac_key,
                    &[&aad12(seq, kind, msg.len()), msg],
                ));
            }
            let pad = 15 - plain.len() % 16;
            plain.extend(std::iter::repeat_n(u8::try_from(pad).unwrap(), pad + 1));
            let len = plain.len();
            let encrypted = match keys.key.len() {
                16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(&keys.key, &iv)
                    .unwrap()
                    .encrypt_padded::<NoPadding>(&mut plain, len)
                    .unwrap()
                    .to_vec(),
                _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(&keys.key, &iv)
                    .unwrap()
                    .encrypt_padded::<NoPadding>(&mut plain, len)
                    .unwrap()
                    .to_vec(),
            };
            let mut body = [&iv[..], &encrypted].concat();
            if etm {
                let tag = hmac(mac, &keys.mac_key, &[&aad12(seq, kind, body.len()), &body]);
                body.extend(tag);
            }
            body
        }
        BulkCipher::Aes256Gcm => unreachable!("covered by the AES-128 case"),
    };
    [&header12(kind, body.len())[..], &body].concat()
}

#[test]
fn tls12_records_of_each_cipher() {
    let (cr, sr) = ([7; 32], [9; 32]);
    let master = [0x33; 48];
    for (suite, etm) in [
        (0xc02f, false),
        (0xcca8, false),
        (0x002f, false),
        (0x002f, true),
        (0xc014, false),
        (0xc027, true),
        (0xc028, false),
        (0xc028, true),
    ] {
        let p = params(suite);
        let block = key_block(&p, &master, &cr, &sr).unwrap();
        let mut client = Tls12RecordDecrypter::new(&p, &block.client, etm).unwrap();
        let msgs: [&[u8]; 3] = [b"EHLO mail.example\r\n", b"", &[0xab; 1000]];
        for (seq, msg) in (0u64..).zip(msgs) {
            let record = seal12(&p, &block.client, etm, seq, 23, msg);
            let (header, body) = split_record(&record);
            assert_eq!(
                client.open(&header, body).unwrap(),
                msg,
                "{suite:#06x} {etm}"
            );
        }
        // A flipped bit anywhere in the body fails; so does the other direction's key, and a
        // record sealed for another content type.
        let record = seal12(&p, &block.client, etm, 3, 23, b"QUIT\r\n");
        for at in [5, 12, record.len() - 1] {
            let mut bad = record.clone();
            bad[at] ^= 0x10;
            let (header, body) = split_record(&bad);
            assert_eq!(
                client.open(&header, body),
                Err(DecryptError::BadRecordMac),
                "{suite:#06x} {etm} byte {at}"
            );
        }
        let (mut header, body) = split_record(&record);
        header[0] = 21;
        assert_eq!(client.open(&header, body), Err(DecryptError::BadRecordMac));
        let mut server = Tls12RecordDecrypter::new(&p, &block.server, etm).unwrap();
        let first = seal12(&p, &block.client, etm, 0, 23, b"x");
        let (header, body) = split_record(&first);
        assert_eq!(server.open(&header, body), Err(DecryptError::BadRecordMac));
        // Reading a CBC record with the wrong encrypt-then-MAC setting fails too.
        if p.cipher.mac().is_some() {
            let mut wrong = Tls12RecordDecrypter::new(&p, &block.client, !etm).unwrap();
            assert!(wrong.open(&header, body).is_err());
        }
        assert_eq!(
            client.open(&header12(23, 3), &[1, 2, 3]),
            Err(DecryptError::Truncated)
        );
        let (header, body) = split_record(&record);
        assert_eq!(client.open(&header, body).unwrap(), b"QUIT\r\n");
        assert_eq!(client.sequence(), 4);
    }
}

// The per-session Decryptor over whole streams.

use crate::direction::Direction;
use crate::proto::tls::TlsVersion;
use crate::proto::tls::keylog::KeyLog;

const RANDOM: [u8; 32] = [0xcb; 32];

fn session(version: TlsVersion, suite: u16, etm: bool) -> SessionParams {
    SessionParams {
        client_random: RANDOM,
        server_random: [0x5e; 32],
        version,
        suite: CipherSuite(suite),
        encrypt_then_mac: etm,
        extended_master_secret: true,
    }
}

fn keylog(lines: &[(&str, &str)]) -> KeyLog {
    let text: String = lines
        .iter()
        .map(|(label, secret)| format!("{label} {} {secret}\n", hex::encode(RANDOM)))
        .collect();
    let mut log = KeyLog::new();
    assert!(log.load_str("test", &text).is_empty());
    log
}

fn feed_in_chunks(
    dec: &mut Decryptor,
    dir: Direction,
    stream: &[u8],
    chunk: usize,
) -> Vec<Plaintext> {
    stream
        .chunks(chunk)
        .flat_map(|c| dec.feed(dir, c))
        .collect()
}

#[test]
fn tls13_session_both_directions_in_small_chunks() {
    let log = keylog(&[
        ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", C_HS),
        ("SERVER_HANDSHAKE_TRAFFIC_SECRET", S_HS),
        ("CLIENT_TRAFFIC_SECRET_0", C_AP),
        ("SERVER_TRAFFIC_SECRET_0", S_AP),
    ]);
    let mut dec = Decryptor::new(&session(TlsVersion::TLS13, 0x1301, false), &log).unwrap();
    // A clear hello-like record and a ChangeCipherSpec come first, as on the wire.
    let client: Vec<u8> = [
        &h("160301000401000000")[..],
        &h("140303000101"),
        &h(CLIENT_FINISHED),
        &h(CLIENT_DATA),
        &h(CLIENT_ALERT),
    ]
    .concat();
    let out = feed_in_chunks(&mut dec, Direction::Client, &client, 7);
    assert_eq!(out.len(), 3);
    assert!(matches!(&out[0], Plaintext::Handshake(m) if m[0] == 0x14));
    assert_eq!(out[1], Plaintext::ApplicationData((0..50).collect()));
    assert_eq!(out[2], Plaintext::Alert(vec![1, 0]));
    let stats = dec.stats(Direction::Client);
    assert_eq!(
        (
            stats.decrypted,
            stats.handshake_decrypted,
            stats.failed,
            stats.clear
        ),
        (3, 1, 0, 2)
    );

    // The server's stream here starts after its encrypted handshake: the handshake key does
    // not open the ticket, the traffic key does, and the rest follows.
    let server: Vec<u8> = [&h(SERVER_TICKET)[..], &h(SERVER_DATA), &h(SERVER_ALERT)].concat();
    let out = feed_in_chunks(&mut dec, Direction::Server, &server, 100);
    assert_eq!(out.len(), 3);
    assert_eq!(out[1], Plaintext::ApplicationData((0..50).collect()));
    let stats = dec.stats(Direction::Server);
    assert_eq!(
        (stats.decrypted, stats.handshake_decrypted, stats.failed),
        (3, 1, 0)
    );
}

#[test]
fn tls13_session_with_wrong_or_missing_keys() {
    // Only the other session's keys: every protected record fails, nothing is returned.
    let log = keylog(&[("CLIENT_TRAFFIC_SECRET_0", S_AP)]);
    let mut dec = Decryptor::new(&session(TlsVersion::TLS13, 0x1301, false), &log).unwrap();
    let client = [&h(CLIENT_DATA)[..], &h(CLIENT_ALERT)].concat();
    // Nothing is made of them but their place and size.
    let out = dec.feed(Direction::Client, &client);
    assert!(
        out.iter()
            .all(|p| matches!(p, Plaintext::Undecryptable { len } if *len > 16)),
        "{out:?}"
    );
    assert_eq!(out.len(), 2);
    assert_eq!(dec.stats(Direction::Client).failed, 2);
    // A record that is cut short yields nothing yet and is not counted.
    let mut dec = Decryptor::new(
        &session(TlsVersion::TLS13, 0x1301, false),
        &keylog(&[("CLIENT_TRAFFIC_SECRET_0", C_AP)]),
    )
    .unwrap();
    let record = h(CLIENT_DATA);
    assert!(dec.feed(Direction::Client, &record[..40]).is_empty());
    assert_eq!(dec.stats(Direction::Client), DirectionStats::default());
    // Bytes that are not TLS records stop the direction.
    assert!(
        dec.feed(Direction::Server, b"220 mail.example ESMTP\r\n")
            .is_empty()
    );
    assert!(dec.stats(Direction::Server).desync);

    let none = KeyLog::new();
    assert_eq!(
        Decryptor::new(&session(TlsVersion::TLS13, 0x1301, false), &none).unwrap_err(),
        SessionError::NoKeys
    );
    let master_only = keylog(&[("CLIENT_RANDOM", &"11".repeat(48))]);
    assert_eq!(
        Decryptor::new(&session(TlsVersion::TLS13, 0x1301, false), &master_only).unwrap_err(),
        SessionError::NoKeys
    );
    assert_eq!(
        Decryptor::new(&session(TlsVersion::TLS11, 0x002f, false), &master_only).unwrap_err(),
        SessionError::UnsupportedVersion(0x0302)
    );
}

#[test]
fn tls12_session_after_change_cipher_spec() {
    let master = "33".repeat(48);
    let log = keylog(&[("CLIENT_RANDOM", &master)]);
    for (suite, etm) in [
        (0xc02f, false),
        (0xcca8, false),
        (0xc028, true),
        (0x002f, false),
    ] {
        let params = session(TlsVersion::TLS12, suite, etm);
        let p = SuiteParams::for_suite(CipherSuite(suite)).unwrap();
        let block = key_block(
            &p,
            &h(&master),
            &params.client_random,
            &params.server_random,
        )
        .unwrap();
        let mut dec = Decryptor::new(&params, &log).unwrap();
        let mut stream = h("16030300040e000000140303000101");
        stream.extend(seal12(
            &p,
            &block.server,
            etm,
            0,
            22,
            &[0x14, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        ));
        stream.extend(seal12(&p, &block.server, etm, 1, 23, b"220 ready\r\n"));
        let mut bad = seal12(&p, &block.server, etm, 2, 23, b"250 ok\r\n");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        stream.extend(bad);
        // After a failure the next record still opens: its sequence number was not spent.
        stream.extend(seal12(&p, &block.server, etm, 2, 23, b"221 bye\r\n"));
        let out = feed_in_chunks(&mut dec, Direction::Server, &stream, 3);
        assert_eq!(
            out[1..],
            [
                Plaintext::ApplicationData(b"220 ready\r\n".to_vec()),
                Plaintext::Undecryptable { len: last + 1 - 5 },
                Plaintext::ApplicationData(b"221 bye\r\n".to_vec())
            ],
            "{suite:#06x}"
        );
        assert!(matches!(&out[0], Plaintext::Handshake(m) if m[0] == 0x14));
        let stats = dec.stats(Direction::Server);
        assert_eq!(
            (
                stats.decrypted,
                stats.handshake_decrypted,
                stats.failed,
                stats.clear
            ),
            (3, 1, 1, 2)
        );
    }
}
