//! Summaries of X.509 certificates seen in clear (TLS 1.2 and older send the server's chain,
//! and any client certificate, unencrypted).

use crate::time::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt::Write;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Most SAN DNS names kept per certificate; shared hosting certificates can list thousands.
pub const MAX_SAN_NAMES: usize = 100;

/// What one certificate says about its holder, for the JSON record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertificateInfo {
    /// Subject distinguished name in RFC 4514 form (most specific first, e.g. `CN=mx.example.org,O=Example,C=DE`).
    pub subject: String,
    /// Issuer distinguished name in RFC 4514 form.
    pub issuer: String,
    /// Serial number, upper-case hex without leading zero bytes (as Zeek and OpenSSL print it).
    pub serial: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// DNS names from the subjectAltName extension (at most [`MAX_SAN_NAMES`]).
    pub san: Vec<String>,
    /// Issued by its own subject: subject equals issuer and the authority key id, when present,
    /// equals the subject key id. The signature itself is not verified.
    pub self_signed: bool,
    /// Public key algorithm: `rsa`, `ec`, `dsa`, `ed25519`, `ed448`, `rsassa_pss`, or the OID.
    pub key_type: String,
    /// Public key size in bits, when known.
    pub key_bits: Option<u32>,
    /// Signature algorithm name (e.g. `sha256WithRSAEncryption`), or its OID.
    pub signature_algorithm: String,
    /// SHA-256 of the DER encoding, lower-case hex (the usual certificate fingerprint).
    pub sha256: String,
    /// Number of certificates in the Certificate message this one led.
    pub chain_length: usize,
}

/// Why a certificate could not be summarised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate is not valid DER X.509: {0}")]
pub struct CertificateError(String);

impl CertificateInfo {
    /// Summarises the DER certificate `der`, the first of `chain_length` in its message.
    pub fn from_der(der: &[u8], chain_length: usize) -> Result<Self, CertificateError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| CertificateError(e.to_string()))?;
        let (key_type, key_bits) = key_facts(&cert);
        Ok(CertificateInfo {
            subject: rfc4514(cert.subject()),
            issuer: rfc4514(cert.issuer()),
            serial: serial_hex(cert.raw_serial()),
            not_before: Timestamp::from_parts(cert.validity().not_before.timestamp(), 0),
            not_after: Timestamp::from_parts(cert.validity().not_after.timestamp(), 0),
            san: san_dns_names(&cert),
            self_signed: is_self_issued(&cert),
            key_type,
            key_bits,
            signature_algorithm: oid_name(&cert.signature_algorithm.algorithm),
            sha256: hex::encode(Sha256::digest(der)),
            chain_length,
        })
    }
}

/// Serial bytes as upper-case hex, without DER's leading zero padding.
fn serial_hex(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex::encode_upper(raw.get(start..).unwrap_or_default())
}

/// The short name of an OID from x509-parser's registry, or its dotted form.
fn oid_name(oid: &x509_parser::der_parser::Oid<'_>) -> String {
    match x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry()) {
        Ok(name) => name.to_string(),
        Err(_) => oid.to_id_string(),
    }
}

/// Key algorithm and size.
fn key_facts(cert: &X509Certificate<'_>) -> (String, Option<u32>) {
    let spki = cert.public_key();
    let oid = spki.algorithm.algorithm.to_id_string();
    let parsed_bits = || {
        spki.parsed()
            .ok()
            .map(|k| k.key_size() as u32)
            .filter(|&b| b > 0)
    };
    match oid.as_str() {
        "1.2.840.113549.1.1.1" => ("rsa".into(), parsed_bits()),
        "1.2.840.113549.1.1.10" => ("rsassa_pss".into(), parsed_bits()),
        "1.2.840.10045.2.1" => ("ec".into(), parsed_bits()),
        "1.2.840.10040.4.1" => ("dsa".into(), parsed_bits()),
        "1.3.101.112" => ("ed25519".into(), Some(256)),
        "1.3.101.113" => ("ed448".into(), Some(456)),
        _ => (oid, None),
    }
}

/// DNS names of the subjectAltName extension.
fn san_dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for name in &san.general_names {
                if let GeneralName::DNSName(dns) = name
                    && out.len() < MAX_SAN_NAMES
                {
                    out.push((*dns).to_string());
                }
            }
        }
    }
    out
}

/// Subject equals issuer, and the key identifiers (when both present) agree.
fn is_self_issued(cert: &X509Certificate<'_>) -> bool {
    if cert.subject().as_raw() != cert.issuer().as_raw() {
        return false;
    }
    let mut subject_key = None;
    let mut authority_key = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => subject_key = Some(k.0),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority_key = aki.key_identifier.as_ref().map(|k| k.0)
            }
            _ => {}
        }
    }
    match (subject_key, authority_key) {
        (Some(s), Some(a)) => s == a,
        _ => true,
    }
}

/// The RFC 4514 short name of an attribute type, if it has one (plus the customary
/// `emailAddress`).
fn attribute_short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        _ => return None,
    })
}

/// A distinguished name in RFC 4514 string form: RDNs last-to-first, joined by `,`;
/// multi-valued RDNs joined by `+`.
pub fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            push_attribute(&mut out, atv);
        }
    }
    out
}

/// Appends `type=value` with RFC 4514 escaping.
fn push_attribute(out: &mut String, atv: &AttributeTypeAndValue<'_>) {
    let oid = atv.attr_type().to_id_string();
    match attribute_short_name(&oid) {
        Some(short) => out.push_str(short),
        None => out.push_str(&oid),
    }
    out.push('=');
    match attribute_text(atv) {
        Some(text) => push_escaped(out, &text),
        None => {
            // RFC 4514 section 2.4: values without a string form are written as #hex.
            out.push('#');
            out.push_str(&hex::encode(atv.as_slice()));
        }
    }
}

/// The value of a string-typed attribute as text.
fn attribute_text(atv: &AttributeTypeAndValue<'_>) -> Option<String> {
    if let Ok(s) = atv.as_str() {
        return Some(s.to_string());
    }
    let data = atv.as_slice();
    match atv.attr_value().tag() {
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            Some(
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect(),
            )
        }
        Tag::UniversalString => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            Some(
                data.chunks_exact(4)
                    .map(|c| {
                        char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                            .unwrap_or(char::REPLACEMENT_CHARACTER)
                    })
                    .collect(),
            )
        }
        // T.61 in certificates is in practice Latin-1.
        Tag::T61String | Tag::VisibleString => Some(data.iter().map(|&b| b as char).collect()),
        _ => None,
    }
}

/// Appends `value` escaped per RFC 4514 section 2.4.
fn push_escaped(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test certificates made once for this project with OpenSSL 3.0 (see
    // tests/fixtures/tls/README.md for the exact commands).
    const CA_DER: &[u8] = include_bytes!("../../../tests/fixtures/tls/ca.der");
    const LEAF_DER: &[u8] = include_bytes!("../../../tests/fixtures/tls/leaf.der");

    #[test]
    fn summarises_a_ca_signed_leaf() {
        let info = CertificateInfo::from_der(LEAF_DER, 2).unwrap();
        assert_eq!(
            info.subject,
            "CN=mail.example.test,OU=Mail\\, Relay,O=Mailsift Test,C=DE"
        );
        assert_eq!(info.issuer, "CN=Mailsift Test CA,O=Mailsift Test,C=DE");
        assert_eq!(info.serial, "1001");
        assert_eq!(info.not_before.to_string(), "2024-01-01T00:00:00.000000Z");
        assert_eq!(info.not_after.to_string(), "2034-01-01T00:00:00.000000Z");
        assert_eq!(info.san, vec!["mail.example.test", "smtp.example.test"]);
        assert!(!info.self_signed);
        assert_eq!(info.key_type, "rsa");
        assert_eq!(info.key_bits, Some(2048));
        assert_eq!(info.signature_algorithm, "ecdsa-with-SHA256");
        assert_eq!(info.chain_length, 2);
        assert_eq!(info.sha256, hex::encode(Sha256::digest(LEAF_DER)));
    }

    #[test]
    fn recognises_a_self_signed_certificate() {
        let info = CertificateInfo::from_der(CA_DER, 1).unwrap();
        assert!(info.self_signed);
        assert_eq!(info.subject, info.issuer);
        assert_eq!(info.key_type, "ec");
        assert_eq!(info.key_bits, Some(256));
        assert!(info.san.is_empty());
    }

    #[test]
    fn truncated_certificates_are_errors() {
        for cut in 0..LEAF_DER.len() {
            assert!(CertificateInfo::from_der(&LEAF_DER[..cut], 1).is_err());
        }
    }

    #[test]
    fn serials_drop_padding_but_keep_zero() {
        assert_eq!(serial_hex(&[0x00, 0x9a, 0x01]), "9A01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[]), "");
    }

    #[test]
    fn escapes_rfc4514_specials() {
        let mut s = String::new();
        push_escaped(&mut s, " #a,b+c\"d\\e ");
        assert_eq!(s, "\\ #a\\,b\\+c\\\"d\\\\e\\ ");
        let mut s = String::new();
        push_escaped(&mut s, "#x");
        assert_eq!(s, "\\#x");
    }
}
