//! Typed TLS code points with their IANA names (versions, cipher suites, extensions, groups,
//! signature schemes, point formats, alerts).
//!
//! Names follow the IANA "Transport Layer Security (TLS) Parameters" registries (RFC 8446 and
//! the RFCs they cite). Only the common entries are named; every other value is shown as hex,
//! so a missing name never hides a value.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use std::fmt;

/// True for the GREASE values of RFC 8701 (`0x0a0a`, `0x1a1a`, ... `0xfafa`), which clients send
/// to keep servers tolerant and which fingerprints ignore.
pub fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// [`is_grease`] for code points of any width (8-bit registries never hold GREASE values).
fn is_grease_code<T: Into<u16>>(value: T) -> bool {
    is_grease(value.into())
}

/// The name of a protocol version (`"TLS 1.2"`), `"GREASE"`, or `"unknown"`.
pub fn tls_version_name(version: u16) -> &'static str {
    match version {
        0x0002 => "SSL 2.0",
        0x0300 => "SSL 3.0",
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        0x7f00..=0x7fff => "TLS 1.3 draft",
        0xfeff => "DTLS 1.0",
        0xfefd => "DTLS 1.2",
        0xfefc => "DTLS 1.3",
        v if is_grease(v) => "GREASE",
        _ => "unknown",
    }
}

/// A TLS or SSL protocol version as carried on the wire (`0x0303` is TLS 1.2).
///
/// Serialised as its name (`"TLS 1.2"`, `"TLS 1.3 draft 28"`) or as hex when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TlsVersion(pub u16);

impl TlsVersion {
    /// SSL 2.0, as named by an SSLv2-format ClientHello.
    pub const SSL2: TlsVersion = TlsVersion(0x0002);
    /// SSL 3.0.
    pub const SSL3: TlsVersion = TlsVersion(0x0300);
    /// TLS 1.0.
    pub const TLS10: TlsVersion = TlsVersion(0x0301);
    /// TLS 1.1.
    pub const TLS11: TlsVersion = TlsVersion(0x0302);
    /// TLS 1.2.
    pub const TLS12: TlsVersion = TlsVersion(0x0303);
    /// TLS 1.3.
    pub const TLS13: TlsVersion = TlsVersion(0x0304);

    /// The version's name, or `"unknown"`.
    pub fn name(self) -> &'static str {
        tls_version_name(self.0)
    }

    /// Where this version ranks among SSL/TLS releases (SSL 2.0 lowest), or `None` for values
    /// that are not an SSL/TLS release (DTLS, GREASE, unknown). TLS 1.3 drafts rank as TLS 1.3.
    pub fn rank(self) -> Option<u8> {
        match self.0 {
            0x0002 => Some(0),
            0x0300 => Some(1),
            0x0301 => Some(2),
            0x0302 => Some(3),
            0x0303 => Some(4),
            0x0304 | 0x7f00..=0x7fff => Some(5),
            _ => None,
        }
    }

    /// True for SSL 2.0 up to TLS 1.1: versions that RFC 8996 and RFC 7568 deprecate.
    pub fn is_below_tls12(self) -> bool {
        self.rank().is_some_and(|r| r < 4)
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0x7f00..=0x7fff => write!(f, "TLS 1.3 draft {}", self.0 & 0xff),
            v => match tls_version_name(v) {
                "unknown" | "GREASE" => write!(f, "0x{v:04x}"),
                name => f.write_str(name),
            },
        }
    }
}

impl Serialize for TlsVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Defines a newtype over a registry code point, with its name table and its JSON form
/// `{"id": "0x1301", "name": "TLS_AES_128_GCM_SHA256"}` (`name` left out when unknown).
macro_rules! code_point {
    ($(#[$doc:meta])* $ty:ident($int:ty), $width:literal, $table:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(pub $int);

        impl $ty {
            /// The registry name, `"GREASE"` for GREASE values, or `None` when not known here.
            pub fn name(self) -> Option<&'static str> {
                if is_grease_code(self.0) {
                    return Some("GREASE");
                }
                $table(self.0)
            }
        }

        impl fmt::Display for $ty {
            /// The registry name, or the value in hex when unknown.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "0x{:0w$x}", self.0, w = $width),
                }
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let name = self.name();
                let mut st = s.serialize_struct(stringify!($ty), 1 + name.is_some() as usize)?;
                st.serialize_field("id", &format_args!("0x{:0w$x}", self.0, w = $width))?;
                if let Some(name) = name {
                    st.serialize_field("name", name)?;
                }
                st.end()
            }
        }
    };
}

code_point!(
    /// A cipher suite (IANA TLS Cipher Suites registry).
    CipherSuite(u16), 4, cipher_suite_name
);
code_point!(
    /// A hello extension type (IANA TLS ExtensionType Values).
    ExtensionType(u16), 4, extension_name
);
code_point!(
    /// A key exchange group from `supported_groups` (IANA TLS Supported Groups).
    NamedGroup(u16), 4, group_name
);
code_point!(
    /// A signature scheme or TLS 1.2 hash/signature pair (IANA TLS SignatureScheme).
    SignatureScheme(u16), 4, signature_scheme_name
);
code_point!(
    /// An elliptic curve point format (IANA TLS EC Point Formats).
    EcPointFormat(u8), 2, point_format_name
);

impl ExtensionType {
    /// server_name (SNI).
    pub const SERVER_NAME: ExtensionType = ExtensionType(0x0000);
    /// supported_groups (formerly elliptic_curves).
    pub const SUPPORTED_GROUPS: ExtensionType = ExtensionType(0x000a);
    /// ec_point_formats.
    pub const EC_POINT_FORMATS: ExtensionType = ExtensionType(0x000b);
    /// signature_algorithms.
    pub const SIGNATURE_ALGORITHMS: ExtensionType = ExtensionType(0x000d);
    /// application_layer_protocol_negotiation (ALPN).
    pub const ALPN: ExtensionType = ExtensionType(0x0010);
    /// supported_versions.
    pub const SUPPORTED_VERSIONS: ExtensionType = ExtensionType(0x002b);
    /// `encrypt_then_mac` (RFC 7366): CBC records carry their MAC over the ciphertext.
    pub const ENCRYPT_THEN_MAC: ExtensionType = ExtensionType(0x0016);
    /// `extended_master_secret` (RFC 7627): the master secret covers the handshake hash.
    pub const EXTENDED_MASTER_SECRET: ExtensionType = ExtensionType(0x0017);
    /// `pre_shared_key` (RFC 8446): in a ServerHello, the server resumed a session.
    pub const PRE_SHARED_KEY: ExtensionType = ExtensionType(0x0029);
}

fn cipher_suite_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x0000 => "TLS_NULL_WITH_NULL_NULL",
        0x0001 => "TLS_RSA_WITH_NULL_MD5",
        0x0002 => "TLS_RSA_WITH_NULL_SHA",
        0x0003 => "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
        0x0004 => "TLS_RSA_WITH_RC4_128_MD5",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        0x0006 => "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5",
        0x0007 => "TLS_RSA_WITH_IDEA_CBC_SHA",
        0x0008 => "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA",
        0x0009 => "TLS_RSA_WITH_DES_CBC_SHA",
        0x000a => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x000b => "TLS_DH_DSS_EXPORT_WITH_DES40_CBC_SHA",
        0x000c => "TLS_DH_DSS_WITH_DES_CBC_SHA",
        0x000d => "TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA",
        0x000e => "TLS_DH_RSA_EXPORT_WITH_DES40_CBC_SHA",
        0x000f => "TLS_DH_RSA_WITH_DES_CBC_SHA",
        0x0010 => "TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0011 => "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA",
        0x0012 => "TLS_DHE_DSS_WITH_DES_CBC_SHA",
        0x0013 => "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA",
        0x0014 => "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA",
        0x0015 => "TLS_DHE_RSA_WITH_DES_CBC_SHA",
        0x0016 => "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0017 => "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5",
        0x0018 => "TLS_DH_anon_WITH_RC4_128_MD5",
        0x0019 => "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA",
        0x001a => "TLS_DH_anon_WITH_DES_CBC_SHA",
        0x001b => "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0030 => "TLS_DH_DSS_WITH_AES_128_CBC_SHA",
        0x0031 => "TLS_DH_RSA_WITH_AES_128_CBC_SHA",
        0x0032 => "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
        0x0033 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        0x0034 => "TLS_DH_anon_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x0036 => "TLS_DH_DSS_WITH_AES_256_CBC_SHA",
        0x0037 => "TLS_DH_RSA_WITH_AES_256_CBC_SHA",
        0x0038 => "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
        0x0039 => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        0x003a => "TLS_DH_anon_WITH_AES_256_CBC_SHA",
        0x003b => "TLS_RSA_WITH_NULL_SHA256",
        0x003c => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003d => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0x003e => "TLS_DH_DSS_WITH_AES_128_CBC_SHA256",
        0x003f => "TLS_DH_RSA_WITH_AES_128_CBC_SHA256",
        0x0040 => "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256",
        0x0041 => "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA",
        0x0042 => "TLS_DH_DSS_WITH_CAMELLIA_128_CBC_SHA",
        0x0043 => "TLS_DH_RSA_WITH_CAMELLIA_128_CBC_SHA",
        0x0044 => "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA",
        0x0045 => "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA",
        0x0046 => "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA",
        0x0067 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
        0x0068 => "TLS_DH_DSS_WITH_AES_256_CBC_SHA256",
        0x0069 => "TLS_DH_RSA_WITH_AES_256_CBC_SHA256",
        0x006a => "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256",
        0x006b => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
        0x006c => "TLS_DH_anon_WITH_AES_128_CBC_SHA256",
        0x006d => "TLS_DH_anon_WITH_AES_256_CBC_SHA256",
        0x0084 => "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA",
        0x0085 => "TLS_DH_DSS_WITH_CAMELLIA_256_CBC_SHA",
        0x0086 => "TLS_DH_RSA_WITH_CAMELLIA_256_CBC_SHA",
        0x0087 => "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA",
        0x0088 => "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA",
        0x0089 => "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA",
        0x008a => "TLS_PSK_WITH_RC4_128_SHA",
        0x008b => "TLS_PSK_WITH_3DES_EDE_CBC_SHA",
        0x008c => "TLS_PSK_WITH_AES_128_CBC_SHA",
        0x008d => "TLS_PSK_WITH_AES_256_CBC_SHA",
        0x0096 => "TLS_RSA_WITH_SEED_CBC_SHA",
        0x0097 => "TLS_DH_DSS_WITH_SEED_CBC_SHA",
        0x0098 => "TLS_DH_RSA_WITH_SEED_CBC_SHA",
        0x0099 => "TLS_DHE_DSS_WITH_SEED_CBC_SHA",
        0x009a => "TLS_DHE_RSA_WITH_SEED_CBC_SHA",
        0x009b => "TLS_DH_anon_WITH_SEED_CBC_SHA",
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0x00a0 => "TLS_DH_RSA_WITH_AES_128_GCM_SHA256",
        0x00a1 => "TLS_DH_RSA_WITH_AES_256_GCM_SHA384",
        0x00a2 => "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256",
        0x00a3 => "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384",
        0x00a4 => "TLS_DH_DSS_WITH_AES_128_GCM_SHA256",
        0x00a5 => "TLS_DH_DSS_WITH_AES_256_GCM_SHA384",
        0x00a6 => "TLS_DH_anon_WITH_AES_128_GCM_SHA256",
        0x00a7 => "TLS_DH_anon_WITH_AES_256_GCM_SHA384",
        0x00a8 => "TLS_PSK_WITH_AES_128_GCM_SHA256",
        0x00a9 => "TLS_PSK_WITH_AES_256_GCM_SHA384",
        0x00ba => "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256",
        0x00bb => "TLS_DH_DSS_WITH_CAMELLIA_128_CBC_SHA256",
        0x00bc => "TLS_DH_RSA_WITH_CAMELLIA_128_CBC_SHA256",
        0x00bd => "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256",
        0x00be => "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256",
        0x00bf => "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256",
        0x00c0 => "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256",
        0x00c1 => "TLS_DH_DSS_WITH_CAMELLIA_256_CBC_SHA256",
        0x00c2 => "TLS_DH_RSA_WITH_CAMELLIA_256_CBC_SHA256",
        0x00c3 => "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256",
        0x00c4 => "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256",
        0x00c5 => "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256",
        0x00ff => "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0x5600 => "TLS_FALLBACK_SCSV",
        0xc001 => "TLS_ECDH_ECDSA_WITH_NULL_SHA",
        0xc002 => "TLS_ECDH_ECDSA_WITH_RC4_128_SHA",
        0xc003 => "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA",
        0xc004 => "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA",
        0xc005 => "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA",
        0xc006 => "TLS_ECDHE_ECDSA_WITH_NULL_SHA",
        0xc007 => "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        0xc008 => "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc00b => "TLS_ECDH_RSA_WITH_NULL_SHA",
        0xc00c => "TLS_ECDH_RSA_WITH_RC4_128_SHA",
        0xc00d => "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA",
        0xc00e => "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA",
        0xc00f => "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA",
        0xc010 => "TLS_ECDHE_RSA_WITH_NULL_SHA",
        0xc011 => "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        0xc012 => "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc015 => "TLS_ECDH_anon_WITH_NULL_SHA",
        0xc016 => "TLS_ECDH_anon_WITH_RC4_128_SHA",
        0xc017 => "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA",
        0xc018 => "TLS_ECDH_anon_WITH_AES_128_CBC_SHA",
        0xc019 => "TLS_ECDH_anon_WITH_AES_256_CBC_SHA",
        0xc01a => "TLS_SRP_SHA_WITH_3DES_EDE_CBC_SHA",
        0xc01b => "TLS_SRP_SHA_RSA_WITH_3DES_EDE_CBC_SHA",
        0xc01c => "TLS_SRP_SHA_DSS_WITH_3DES_EDE_CBC_SHA",
        0xc01d => "TLS_SRP_SHA_WITH_AES_128_CBC_SHA",
        0xc01e => "TLS_SRP_SHA_RSA_WITH_AES_128_CBC_SHA",
        0xc01f => "TLS_SRP_SHA_DSS_WITH_AES_128_CBC_SHA",
        0xc020 => "TLS_SRP_SHA_WITH_AES_256_CBC_SHA",
        0xc021 => "TLS_SRP_SHA_RSA_WITH_AES_256_CBC_SHA",
        0xc022 => "TLS_SRP_SHA_DSS_WITH_AES_256_CBC_SHA",
        0xc023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xc025 => "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc026 => "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0xc029 => "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256",
        0xc02a => "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02d => "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02e => "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xc031 => "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256",
        0xc032 => "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384",
        0xc035 => "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA",
        0xc036 => "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA",
        0xc050 => "TLS_RSA_WITH_ARIA_128_GCM_SHA256",
        0xc051 => "TLS_RSA_WITH_ARIA_256_GCM_SHA384",
        0xc052 => "TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256",
        0xc053 => "TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384",
        0xc054 => "TLS_DH_RSA_WITH_ARIA_128_GCM_SHA256",
        0xc055 => "TLS_DH_RSA_WITH_ARIA_256_GCM_SHA384",
        0xc056 => "TLS_DHE_DSS_WITH_ARIA_128_GCM_SHA256",
        0xc057 => "TLS_DHE_DSS_WITH_ARIA_256_GCM_SHA384",
        0xc058 => "TLS_DH_DSS_WITH_ARIA_128_GCM_SHA256",
        0xc059 => "TLS_DH_DSS_WITH_ARIA_256_GCM_SHA384",
        0xc05a => "TLS_DH_anon_WITH_ARIA_128_GCM_SHA256",
        0xc05b => "TLS_DH_anon_WITH_ARIA_256_GCM_SHA384",
        0xc05c => "TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256",
        0xc05d => "TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384",
        0xc05e => "TLS_ECDH_ECDSA_WITH_ARIA_128_GCM_SHA256",
        0xc05f => "TLS_ECDH_ECDSA_WITH_ARIA_256_GCM_SHA384",
        0xc060 => "TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256",
        0xc061 => "TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384",
        0xc072 => "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256",
        0xc073 => "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384",
        0xc074 => "TLS_ECDH_ECDSA_WITH_CAMELLIA_128_CBC_SHA256",
        0xc075 => "TLS_ECDH_ECDSA_WITH_CAMELLIA_256_CBC_SHA384",
        0xc076 => "TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256",
        0xc077 => "TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384",
        0xc078 => "TLS_ECDH_RSA_WITH_CAMELLIA_128_CBC_SHA256",
        0xc079 => "TLS_ECDH_RSA_WITH_CAMELLIA_256_CBC_SHA384",
        0xc09c => "TLS_RSA_WITH_AES_128_CCM",
        0xc09d => "TLS_RSA_WITH_AES_256_CCM",
        0xc09e => "TLS_DHE_RSA_WITH_AES_128_CCM",
        0xc09f => "TLS_DHE_RSA_WITH_AES_256_CCM",
        0xc0a0 => "TLS_RSA_WITH_AES_128_CCM_8",
        0xc0a1 => "TLS_RSA_WITH_AES_256_CCM_8",
        0xc0a2 => "TLS_DHE_RSA_WITH_AES_128_CCM_8",
        0xc0a3 => "TLS_DHE_RSA_WITH_AES_256_CCM_8",
        0xc0ac => "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
        0xc0ad => "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
        0xc0ae => "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
        0xc0af => "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xccaa => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xccab => "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256",
        0xccac => "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
        0xccad => "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
        0xccae => "TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256",
        _ => return None,
    })
}

fn extension_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0 => "server_name",
        1 => "max_fragment_length",
        2 => "client_certificate_url",
        3 => "trusted_ca_keys",
        4 => "truncated_hmac",
        5 => "status_request",
        6 => "user_mapping",
        7 => "client_authz",
        8 => "server_authz",
        9 => "cert_type",
        10 => "supported_groups",
        11 => "ec_point_formats",
        12 => "srp",
        13 => "signature_algorithms",
        14 => "use_srtp",
        15 => "heartbeat",
        16 => "application_layer_protocol_negotiation",
        17 => "status_request_v2",
        18 => "signed_certificate_timestamp",
        19 => "client_certificate_type",
        20 => "server_certificate_type",
        21 => "padding",
        22 => "encrypt_then_mac",
        23 => "extended_master_secret",
        24 => "token_binding",
        25 => "cached_info",
        27 => "compress_certificate",
        28 => "record_size_limit",
        34 => "delegated_credential",
        35 => "session_ticket",
        41 => "pre_shared_key",
        42 => "early_data",
        43 => "supported_versions",
        44 => "cookie",
        45 => "psk_key_exchange_modes",
        47 => "certificate_authorities",
        48 => "oid_filters",
        49 => "post_handshake_auth",
        50 => "signature_algorithms_cert",
        51 => "key_share",
        57 => "quic_transport_parameters",
        // Not in the IANA registry, but widely sent (NPN by old browsers, ALPS by Chrome).
        13172 => "next_protocol_negotiation",
        17513 => "application_settings",
        17613 => "application_settings",
        0xfe0d => "encrypted_client_hello",
        0xff01 => "renegotiation_info",
        _ => return None,
    })
}

fn group_name(id: u16) -> Option<&'static str> {
    Some(match id {
        1 => "sect163k1",
        2 => "sect163r1",
        3 => "sect163r2",
        4 => "sect193r1",
        5 => "sect193r2",
        6 => "sect233k1",
        7 => "sect233r1",
        8 => "sect239k1",
        9 => "sect283k1",
        10 => "sect283r1",
        11 => "sect409k1",
        12 => "sect409r1",
        13 => "sect571k1",
        14 => "sect571r1",
        15 => "secp160k1",
        16 => "secp160r1",
        17 => "secp160r2",
        18 => "secp192k1",
        19 => "secp192r1",
        20 => "secp224k1",
        21 => "secp224r1",
        22 => "secp256k1",
        23 => "secp256r1",
        24 => "secp384r1",
        25 => "secp521r1",
        26 => "brainpoolP256r1",
        27 => "brainpoolP384r1",
        28 => "brainpoolP512r1",
        29 => "x25519",
        30 => "x448",
        31 => "brainpoolP256r1tls13",
        32 => "brainpoolP384r1tls13",
        33 => "brainpoolP512r1tls13",
        256 => "ffdhe2048",
        257 => "ffdhe3072",
        258 => "ffdhe4096",
        259 => "ffdhe6144",
        260 => "ffdhe8192",
        0x11eb => "SecP256r1MLKEM768",
        0x11ec => "X25519MLKEM768",
        0x11ed => "SecP384r1MLKEM1024",
        0x6399 => "X25519Kyber768Draft00",
        0xff01 => "arbitrary_explicit_prime_curves",
        0xff02 => "arbitrary_explicit_char2_curves",
        _ => return None,
    })
}

fn signature_scheme_name(id: u16) -> Option<&'static str> {
    Some(match id {
        // TLS 1.2 (hash, signature) pairs without a TLS 1.3 name are named hash-first like
        // their TLS 1.3 siblings.
        0x0101 => "rsa_md5",
        0x0102 => "dsa_md5",
        0x0103 => "ecdsa_md5",
        0x0201 => "rsa_pkcs1_sha1",
        0x0202 => "dsa_sha1",
        0x0203 => "ecdsa_sha1",
        0x0301 => "rsa_sha224",
        0x0302 => "dsa_sha224",
        0x0303 => "ecdsa_sha224",
        0x0401 => "rsa_pkcs1_sha256",
        0x0402 => "dsa_sha256",
        0x0403 => "ecdsa_secp256r1_sha256",
        0x0501 => "rsa_pkcs1_sha384",
        0x0502 => "dsa_sha384",
        0x0503 => "ecdsa_secp384r1_sha384",
        0x0601 => "rsa_pkcs1_sha512",
        0x0602 => "dsa_sha512",
        0x0603 => "ecdsa_secp521r1_sha512",
        0x0804 => "rsa_pss_rsae_sha256",
        0x0805 => "rsa_pss_rsae_sha384",
        0x0806 => "rsa_pss_rsae_sha512",
        0x0807 => "ed25519",
        0x0808 => "ed448",
        0x0809 => "rsa_pss_pss_sha256",
        0x080a => "rsa_pss_pss_sha384",
        0x080b => "rsa_pss_pss_sha512",
        0x081a => "ecdsa_brainpoolP256r1tls13_sha256",
        0x081b => "ecdsa_brainpoolP384r1tls13_sha384",
        0x081c => "ecdsa_brainpoolP512r1tls13_sha512",
        0x0904 => "mldsa44",
        0x0905 => "mldsa65",
        0x0906 => "mldsa87",
        _ => return None,
    })
}

fn point_format_name(id: u8) -> Option<&'static str> {
    Some(match id {
        0 => "uncompressed",
        1 => "ansiX962_compressed_prime",
        2 => "ansiX962_compressed_char2",
        _ => return None,
    })
}

/// The name of a handshake message type, or `None` when unknown.
pub fn handshake_type_name(msg_type: u8) -> Option<&'static str> {
    Some(match msg_type {
        0 => "hello_request",
        1 => "client_hello",
        2 => "server_hello",
        3 => "hello_verify_request",
        4 => "new_session_ticket",
        5 => "end_of_early_data",
        8 => "encrypted_extensions",
        11 => "certificate",
        12 => "server_key_exchange",
        13 => "certificate_request",
        14 => "server_hello_done",
        15 => "certificate_verify",
        16 => "client_key_exchange",
        20 => "finished",
        21 => "certificate_url",
        22 => "certificate_status",
        24 => "key_update",
        25 => "compressed_certificate",
        254 => "message_hash",
        _ => return None,
    })
}

/// The severity byte of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertLevel(pub u8);

impl AlertLevel {
    /// `"warning"`, `"fatal"`, or `None` for other values.
    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            1 => Some("warning"),
            2 => Some("fatal"),
            _ => None,
        }
    }
}

impl Serialize for AlertLevel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(name) => s.serialize_str(name),
            None => s.collect_str(&format_args!("unknown_{}", self.0)),
        }
    }
}

/// The description byte of an alert (IANA TLS Alerts registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertDescription(pub u8);

impl AlertDescription {
    /// The alert's registry name, or `None` when unknown.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "close_notify",
            10 => "unexpected_message",
            20 => "bad_record_mac",
            21 => "decryption_failed",
            22 => "record_overflow",
            30 => "decompression_failure",
            40 => "handshake_failure",
            41 => "no_certificate",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            47 => "illegal_parameter",
            48 => "unknown_ca",
            49 => "access_denied",
            50 => "decode_error",
            51 => "decrypt_error",
            60 => "export_restriction",
            70 => "protocol_version",
            71 => "insufficient_security",
            80 => "internal_error",
            86 => "inappropriate_fallback",
            90 => "user_canceled",
            100 => "no_renegotiation",
            109 => "missing_extension",
            110 => "unsupported_extension",
            111 => "certificate_unobtainable",
            112 => "unrecognized_name",
            113 => "bad_certificate_status_response",
            114 => "bad_certificate_hash_value",
            115 => "unknown_psk_identity",
            116 => "certificate_required",
            120 => "no_application_protocol",
            121 => "ech_required",
            _ => return None,
        })
    }
}

impl Serialize for AlertDescription {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(name) => s.serialize_str(name),
            None => s.collect_str(&format_args!("unknown_{}", self.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_values_are_the_sixteen_rfc8701_points() {
        let grease: Vec<u16> = (0..=u16::MAX).filter(|&v| is_grease(v)).collect();
        assert_eq!(grease.len(), 16);
        assert_eq!(grease[0], 0x0a0a);
        assert_eq!(grease[15], 0xfafa);
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
    }

    #[test]
    fn versions_have_names_and_ranks() {
        assert_eq!(tls_version_name(0x0303), "TLS 1.2");
        assert_eq!(tls_version_name(0x1a1a), "GREASE");
        assert_eq!(tls_version_name(0x0305), "unknown");
        assert_eq!(TlsVersion(0x7f1c).to_string(), "TLS 1.3 draft 28");
        assert_eq!(TlsVersion(0x0305).to_string(), "0x0305");
        assert!(TlsVersion::TLS11.is_below_tls12());
        assert!(TlsVersion::SSL3.is_below_tls12());
        assert!(!TlsVersion::TLS12.is_below_tls12());
        assert!(!TlsVersion::TLS13.is_below_tls12());
        assert!(!TlsVersion(0xfefd).is_below_tls12());
        assert_eq!(
            serde_json::to_value(TlsVersion::TLS13).unwrap(),
            serde_json::json!("TLS 1.3")
        );
    }

    #[test]
    fn code_points_serialise_with_hex_id_and_optional_name() {
        let known = serde_json::to_value(CipherSuite(0xc02f)).unwrap();
        assert_eq!(
            known,
            serde_json::json!({"id": "0xc02f", "name": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"})
        );
        let unknown = serde_json::to_value(CipherSuite(0xc0ff)).unwrap();
        assert_eq!(unknown, serde_json::json!({"id": "0xc0ff"}));
        let grease = serde_json::to_value(ExtensionType(0x3a3a)).unwrap();
        assert_eq!(
            grease,
            serde_json::json!({"id": "0x3a3a", "name": "GREASE"})
        );
        let pf = serde_json::to_value(EcPointFormat(0)).unwrap();
        assert_eq!(
            pf,
            serde_json::json!({"id": "0x00", "name": "uncompressed"})
        );
        assert_eq!(CipherSuite(0x1301).to_string(), "TLS_AES_128_GCM_SHA256");
        assert_eq!(CipherSuite(0xc0ff).to_string(), "0xc0ff");
    }

    #[test]
    fn alerts_serialise_as_names() {
        assert_eq!(
            serde_json::to_value(AlertDescription(40)).unwrap(),
            serde_json::json!("handshake_failure")
        );
        assert_eq!(
            serde_json::to_value(AlertDescription(200)).unwrap(),
            serde_json::json!("unknown_200")
        );
        assert_eq!(
            serde_json::to_value(AlertLevel(2)).unwrap(),
            serde_json::json!("fatal")
        );
    }
}
