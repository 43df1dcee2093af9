//! TLS fingerprints: JA3 and JA3S (Salesforce) and JA4 (FoxIO), computed from the hello
//! fields as sent.
//!
//! JA3 is `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`: decimal
//! values joined by `-`, fields by `,`, GREASE values dropped, fields left empty when absent;
//! the fingerprint is the MD5 of that string. JA3S is `SSLVersion,Cipher,Extensions` of the
//! ServerHello. JA4 (TLS client, `t13d1516h2_8daaf6152771_e5627efa2ab1`) is a readable prefix
//! (transport, version, SNI, counts, ALPN) then two SHA-256 hashes truncated to 12 hex digits:
//! of the sorted cipher list, and of the sorted extension list without SNI and ALPN followed by
//! the signature algorithms in wire order.

use super::names::{
    CipherSuite, EcPointFormat, ExtensionType, NamedGroup, SignatureScheme, TlsVersion, is_grease,
};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// The ClientHello fields the client fingerprints read, GREASE values included.
#[derive(Debug, Clone, Copy)]
pub struct ClientHelloFields<'a> {
    /// `legacy_version`.
    pub legacy_version: TlsVersion,
    /// Cipher suites in wire order.
    pub cipher_suites: &'a [CipherSuite],
    /// Extension types in wire order.
    pub extensions: &'a [ExtensionType],
    /// `supported_groups` in wire order.
    pub supported_groups: &'a [NamedGroup],
    /// `ec_point_formats` in wire order.
    pub ec_point_formats: &'a [EcPointFormat],
    /// `signature_algorithms` in wire order.
    pub signature_algorithms: &'a [SignatureScheme],
    /// `supported_versions` in wire order.
    pub supported_versions: &'a [TlsVersion],
    /// The first ALPN protocol name, as raw bytes.
    pub first_alpn: Option<&'a [u8]>,
}

/// Appends `values` as decimal numbers joined by `-`.
fn push_decimal_list(out: &mut String, values: impl Iterator<Item = u16>) {
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push('-');
        }
        let _ = write!(out, "{v}");
    }
}

/// The JA3 string of a ClientHello.
pub fn ja3_string(ch: &ClientHelloFields<'_>) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(out, "{},", ch.legacy_version.0);
    push_decimal_list(
        &mut out,
        ch.cipher_suites
            .iter()
            .map(|c| c.0)
            .filter(|&v| !is_grease(v)),
    );
    out.push(',');
    push_decimal_list(
        &mut out,
        ch.extensions.iter().map(|e| e.0).filter(|&v| !is_grease(v)),
    );
    out.push(',');
    push_decimal_list(
        &mut out,
        ch.supported_groups
            .iter()
            .map(|g| g.0)
            .filter(|&v| !is_grease(v)),
    );
    out.push(',');
    push_decimal_list(&mut out, ch.ec_point_formats.iter().map(|p| u16::from(p.0)));
    out
}

/// The JA3S string of a ServerHello.
pub fn ja3s_string(
    version: TlsVersion,
    cipher: CipherSuite,
    extensions: &[ExtensionType],
) -> String {
    let mut out = String::with_capacity(64);
    let _ = write!(out, "{},{},", version.0, cipher.0);
    push_decimal_list(
        &mut out,
        extensions.iter().map(|e| e.0).filter(|&v| !is_grease(v)),
    );
    out
}

/// The lower-case hex MD5 of a JA3 or JA3S string.
pub fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// The two-character JA4 code of a version; `00` when unknown.
fn ja4_version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// The JA4 ALPN part: first and last character of the first protocol name, or of its hex
/// form when either end is not an ASCII letter or digit; `00` without one.
fn ja4_alpn(first: Option<&[u8]>) -> String {
    let Some(name) = first else {
        return "00".into();
    };
    let (Some(&a), Some(&b)) = (name.first(), name.last()) else {
        return "00".into();
    };
    if a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric() {
        [a as char, b as char].iter().collect()
    } else {
        let hex = hex::encode([a, b]);
        // First hex digit of the first byte and last hex digit of the last byte.
        [hex.as_bytes()[0] as char, hex.as_bytes()[3] as char]
            .iter()
            .collect()
    }
}

/// Counts capped at 99, two digits.
fn two_digits(n: usize) -> String {
    format!("{:02}", n.min(99))
}

/// SHA-256 of `s`, first 12 hex digits.
fn sha256_12(s: &str) -> String {
    let mut hex = hex::encode(Sha256::digest(s.as_bytes()));
    hex.truncate(12);
    hex
}

/// Comma-joined four-digit lower-case hex values.
fn hex_list(values: impl Iterator<Item = u16>) -> String {
    let mut out = String::new();
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{v:04x}");
    }
    out
}

/// The JA4 TLS client fingerprint of a ClientHello carried over TCP.
pub fn ja4(ch: &ClientHelloFields<'_>) -> String {
    let version = ch
        .supported_versions
        .iter()
        .map(|v| v.0)
        .filter(|&v| !is_grease(v))
        .max()
        .unwrap_or(ch.legacy_version.0);
    let mut ciphers: Vec<u16> = ch
        .cipher_suites
        .iter()
        .map(|c| c.0)
        .filter(|&v| !is_grease(v))
        .collect();
    let extensions: Vec<u16> = ch
        .extensions
        .iter()
        .map(|e| e.0)
        .filter(|&v| !is_grease(v))
        .collect();
    let has_sni = extensions.contains(&ExtensionType::SERVER_NAME.0);
    let mut hashed_extensions: Vec<u16> = extensions
        .iter()
        .copied()
        .filter(|&e| e != ExtensionType::SERVER_NAME.0 && e != ExtensionType::ALPN.0)
        .collect();
    ciphers.sort_unstable();
    hashed_extensions.sort_unstable();

    let cipher_hash = if ciphers.is_empty() {
        "000000000000".to_string()
    } else {
        sha256_12(&hex_list(ciphers.iter().copied()))
    };
    let extension_hash = if hashed_extensions.is_empty() {
        "000000000000".to_string()
    } else {
        let mut input = hex_list(hashed_extensions.iter().copied());
        let sig_algs: Vec<u16> = ch
            .signature_algorithms
            .iter()
            .map(|s| s.0)
            .filter(|&v| !is_grease(v))
            .collect();
        if !sig_algs.is_empty() {
            input.push('_');
            input.push_str(&hex_list(sig_algs.into_iter()));
        }
        sha256_12(&input)
    };
    format!(
        "t{}{}{}{}{}_{}_{}",
        ja4_version_code(version),
        if has_sni { 'd' } else { 'i' },
        two_digits(ciphers.len()),
        two_digits(extensions.len()),
        ja4_alpn(ch.first_alpn),
        cipher_hash,
        extension_hash
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owned hello fields for building [`ClientHelloFields`] in tests.
    struct Hello {
        version: TlsVersion,
        ciphers: Vec<CipherSuite>,
        extensions: Vec<ExtensionType>,
        groups: Vec<NamedGroup>,
        formats: Vec<EcPointFormat>,
        sig_algs: Vec<SignatureScheme>,
        versions: Vec<TlsVersion>,
    }

    impl Hello {
        fn new(version: u16, ciphers: &[u16], extensions: &[u16], groups: &[u16]) -> Self {
            Hello {
                version: TlsVersion(version),
                ciphers: ciphers.iter().map(|&c| CipherSuite(c)).collect(),
                extensions: extensions.iter().map(|&c| ExtensionType(c)).collect(),
                groups: groups.iter().map(|&c| NamedGroup(c)).collect(),
                formats: Vec::new(),
                sig_algs: Vec::new(),
                versions: Vec::new(),
            }
        }

        fn fields<'a>(&'a self, first_alpn: Option<&'a [u8]>) -> ClientHelloFields<'a> {
            ClientHelloFields {
                legacy_version: self.version,
                cipher_suites: &self.ciphers,
                extensions: &self.extensions,
                supported_groups: &self.groups,
                ec_point_formats: &self.formats,
                signature_algorithms: &self.sig_algs,
                supported_versions: &self.versions,
                first_alpn,
            }
        }
    }

    // JA3 vectors: the two example strings and their MD5 values in the README of
    // github.com/salesforce/ja3.
    #[test]
    fn ja3_matches_the_published_examples() {
        let mut h = Hello::new(
            769,
            &[47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4],
            &[0, 10, 11],
            &[23, 24, 25],
        );
        h.formats = vec![EcPointFormat(0)];
        let s1 = ja3_string(&h.fields(None));
        assert_eq!(
            s1,
            "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
        );
        assert_eq!(md5_hex(&s1), "ada70206e40642a3e4461f35503241d5");

        let h = Hello::new(769, &[4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99], &[], &[]);
        let s2 = ja3_string(&h.fields(None));
        assert_eq!(s2, "769,4-5-10-9-100-98-3-6-19-18-99,,,");
        assert_eq!(md5_hex(&s2), "de350869b8c85de67a350c8d186f11e6");
    }

    #[test]
    fn ja3_drops_grease_everywhere() {
        let mut h = Hello::new(
            771,
            &[0x0a0a, 4865, 0xfafa],
            &[0x1a1a, 0, 0x2a2a],
            &[0x3a3a, 29],
        );
        h.formats = vec![EcPointFormat(0)];
        assert_eq!(ja3_string(&h.fields(None)), "771,4865,0,29,0");
    }

    // JA4 vector: the worked example in technical_details/JA4.md of github.com/FoxIO-LLC/ja4
    // (ciphers, extensions and signature algorithms in wire order; result
    // t13d1516h2_8daaf6152771_e5627efa2ab1), plus GREASE values added here, which must not
    // change it.
    #[test]
    fn ja4_matches_the_foxio_example() {
        let mut h = Hello::new(
            0x0303,
            &[
                0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
                0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            &[
                0x0a0a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005,
                0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0xbaba,
            ],
            &[0x4a4a, 29, 23, 24],
        );
        h.formats = vec![EcPointFormat(0)];
        h.sig_algs = [
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ]
        .map(SignatureScheme)
        .to_vec();
        h.versions = [0x5a5a, 0x0304, 0x0303].map(TlsVersion).to_vec();
        assert_eq!(
            ja4(&h.fields(Some(b"h2"))),
            "t13d1516h2_8daaf6152771_e5627efa2ab1"
        );
    }

    // From the same document: the extension list alone (no signature algorithms) hashes to
    // 6d807ffa2a79, and the sorted cipher list to 8daaf6152771.
    #[test]
    fn ja4_hash_parts_match_the_foxio_document() {
        assert_eq!(
            sha256_12("0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"),
            "6d807ffa2a79"
        );
        assert_eq!(
            sha256_12("002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"),
            "8daaf6152771"
        );
    }

    // ALPN cases listed in the "ALPN Extension Value" section of the FoxIO JA4 document.
    #[test]
    fn ja4_alpn_rules() {
        assert_eq!(ja4_alpn(None), "00");
        assert_eq!(ja4_alpn(Some(b"")), "00");
        assert_eq!(ja4_alpn(Some(b"h2")), "h2");
        assert_eq!(ja4_alpn(Some(b"http/1.1")), "h1");
        assert_eq!(ja4_alpn(Some(b"x")), "xx");
        assert_eq!(ja4_alpn(Some(&[0xab])), "ab");
        assert_eq!(ja4_alpn(Some(&[0xab, 0xcd])), "ad");
        assert_eq!(ja4_alpn(Some(&[0x30, 0xab])), "3b");
        assert_eq!(ja4_alpn(Some(&[0x30, 0x31, 0xab, 0xcd])), "3d");
        assert_eq!(ja4_alpn(Some(&[0x30, 0xab, 0xcd, 0x31])), "01");
    }

    #[test]
    fn ja4_without_extensions_or_ciphers_uses_zero_hashes() {
        let f = ClientHelloFields {
            legacy_version: TlsVersion::TLS10,
            cipher_suites: &[],
            extensions: &[],
            supported_groups: &[],
            ec_point_formats: &[],
            signature_algorithms: &[],
            supported_versions: &[],
            first_alpn: None,
        };
        assert_eq!(ja4(&f), "t10i000000_000000000000_000000000000");
        let sni_only = [ExtensionType::SERVER_NAME];
        let f = ClientHelloFields {
            extensions: &sni_only,
            legacy_version: TlsVersion(0x0305),
            ..f
        };
        assert_eq!(ja4(&f), "t00d000100_000000000000_000000000000");
    }

    #[test]
    fn ja4_caps_counts_at_99() {
        let ciphers: Vec<CipherSuite> = (1..=120).map(CipherSuite).collect();
        let f = ClientHelloFields {
            legacy_version: TlsVersion::TLS12,
            cipher_suites: &ciphers,
            extensions: &[],
            supported_groups: &[],
            ec_point_formats: &[],
            signature_algorithms: &[],
            supported_versions: &[],
            first_alpn: None,
        };
        assert!(ja4(&f).starts_with("t12i9900"));
    }

    #[test]
    fn ja3s_string_and_hash() {
        let exts = [ExtensionType(0xff01), ExtensionType(0x000b)];
        let s = ja3s_string(TlsVersion::TLS12, CipherSuite(0xc02f), &exts);
        assert_eq!(s, "771,49199,65281-11");
        assert_eq!(md5_hex(&s).len(), 32);
        assert_eq!(
            ja3s_string(TlsVersion::TLS10, CipherSuite(5), &[]),
            "769,5,"
        );
    }
}
