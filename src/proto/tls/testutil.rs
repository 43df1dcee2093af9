//! Builders for TLS byte sequences used by the tests of this module.

/// Wraps `payload` in one TLS record.
pub fn record(content_type: u8, version: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type];
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Wraps `body` in a handshake message header.
pub fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![msg_type];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

fn vec8(data: &[u8]) -> Vec<u8> {
    let mut out = vec![data.len() as u8];
    out.extend_from_slice(data);
    out
}

fn vec16(data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

fn vec24(data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(data);
    out
}

fn u16s(values: &[u16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// What a test ClientHello contains; [`ClientHelloSpec::body`] encodes it.
#[derive(Debug, Clone)]
pub struct ClientHelloSpec {
    /// legacy_version.
    pub legacy_version: u16,
    /// Cipher suites in order.
    pub ciphers: Vec<u16>,
    /// Host name for server_name.
    pub sni: String,
    /// ALPN protocol names.
    pub alpn: Vec<Vec<u8>>,
    /// supported_versions entries.
    pub versions: Vec<u16>,
    /// supported_groups entries.
    pub groups: Vec<u16>,
    /// ec_point_formats entries.
    pub point_formats: Vec<u8>,
    /// signature_algorithms entries.
    pub sig_algs: Vec<u16>,
    /// Extension types in wire order; known types get content from the fields above.
    pub extension_order: Vec<u16>,
    /// Leave out the extensions block entirely (pre-RFC 3546 hello).
    pub omit_extensions: bool,
}

impl ClientHelloSpec {
    /// A TLS 1.3-capable hello with GREASE values, SNI and ALPN.
    pub fn modern() -> Self {
        ClientHelloSpec {
            legacy_version: 0x0303,
            ciphers: vec![0x1a1a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0x00ff],
            sni: "mail.example.org".into(),
            alpn: vec![b"smtp".to_vec(), b"h2".to_vec()],
            versions: vec![0x2a2a, 0x0304, 0x0303],
            groups: vec![0x4a4a, 29, 23, 24],
            point_formats: vec![0],
            sig_algs: vec![0x0403, 0x0804, 0x0401],
            extension_order: vec![
                0x0a0a, 0x0000, 0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0010, 0x000d, 0x002b,
                0x0033, 0xfafa,
            ],
            omit_extensions: false,
        }
    }

    /// The extensions, type and encoded content, in wire order.
    pub fn extensions(&self) -> Vec<(u16, Vec<u8>)> {
        self.extension_order
            .iter()
            .map(|&t| {
                let data = match t {
                    0x0000 => {
                        let mut entry = vec![0];
                        entry.extend(vec16(self.sni.as_bytes()));
                        vec16(&entry)
                    }
                    0x000a => vec16(&u16s(&self.groups)),
                    0x000b => vec8(&self.point_formats),
                    0x000d => vec16(&u16s(&self.sig_algs)),
                    0x0010 => {
                        let list: Vec<u8> = self.alpn.iter().flat_map(|p| vec8(p)).collect();
                        vec16(&list)
                    }
                    0x002b => vec8(&u16s(&self.versions)),
                    _ => Vec::new(),
                };
                (t, data)
            })
            .collect()
    }

    /// The ClientHello body (no handshake header).
    pub fn body(&self) -> Vec<u8> {
        let mut out = self.legacy_version.to_be_bytes().to_vec();
        out.extend_from_slice(&[0x11; 32]);
        out.extend(vec8(&[0x22; 32]));
        out.extend(vec16(&u16s(&self.ciphers)));
        out.extend(vec8(&[0]));
        if !self.omit_extensions {
            let exts: Vec<u8> = self
                .extensions()
                .into_iter()
                .flat_map(|(t, d)| {
                    let mut e = t.to_be_bytes().to_vec();
                    e.extend(vec16(&d));
                    e
                })
                .collect();
            out.extend(vec16(&exts));
        }
        out
    }

    /// The ClientHello as a handshake message.
    pub fn message(&self) -> Vec<u8> {
        handshake(1, &self.body())
    }
}

/// What a test ServerHello contains.
#[derive(Debug, Clone)]
pub struct ServerHelloSpec {
    /// legacy_version.
    pub legacy_version: u16,
    /// The server random (the HelloRetryRequest marker makes it an HRR).
    pub random: [u8; 32],
    /// The chosen suite.
    pub cipher: u16,
    /// supported_versions content, if sent.
    pub selected_version: Option<u16>,
    /// The chosen ALPN protocol, if sent.
    pub alpn: Option<Vec<u8>>,
    /// Extension types with empty content sent before the others.
    pub other_extensions: Vec<u16>,
}

impl ServerHelloSpec {
    /// A TLS 1.3 ServerHello choosing TLS_AES_128_GCM_SHA256 and ALPN `smtp`.
    pub fn tls13() -> Self {
        ServerHelloSpec {
            legacy_version: 0x0303,
            random: [0x33; 32],
            cipher: 0x1301,
            selected_version: Some(0x0304),
            alpn: Some(b"smtp".to_vec()),
            other_extensions: vec![0x0033],
        }
    }

    /// A TLS 1.2 ServerHello choosing ECDHE-RSA-AES128-GCM-SHA256 with renegotiation_info.
    pub fn tls12() -> Self {
        ServerHelloSpec {
            legacy_version: 0x0303,
            random: [0x44; 32],
            cipher: 0xc02f,
            selected_version: None,
            alpn: None,
            other_extensions: vec![0xff01, 0x000b],
        }
    }

    /// The ServerHello body (no handshake header).
    pub fn body(&self) -> Vec<u8> {
        let mut out = self.legacy_version.to_be_bytes().to_vec();
        out.extend_from_slice(&self.random);
        out.extend(vec8(&[0x55; 32]));
        out.extend_from_slice(&self.cipher.to_be_bytes());
        out.push(0);
        let mut exts = Vec::new();
        for t in &self.other_extensions {
            exts.extend_from_slice(&t.to_be_bytes());
            exts.extend(vec16(&[]));
        }
        if let Some(v) = self.selected_version {
            exts.extend_from_slice(&0x002bu16.to_be_bytes());
            exts.extend(vec16(&v.to_be_bytes()));
        }
        if let Some(p) = &self.alpn {
            exts.extend_from_slice(&0x0010u16.to_be_bytes());
            exts.extend(vec16(&vec16(&vec8(p))));
        }
        out.extend(vec16(&exts));
        out
    }

    /// The ServerHello as a handshake message.
    pub fn message(&self) -> Vec<u8> {
        handshake(2, &self.body())
    }
}

/// A Certificate handshake message (TLS 1.2 form) carrying `certs`, leaf first.
pub fn certificate_message(certs: &[&[u8]]) -> Vec<u8> {
    let list: Vec<u8> = certs.iter().flat_map(|c| vec24(c)).collect();
    handshake(11, &vec24(&list))
}

/// A tiny deterministic pseudo-random generator (xorshift) for garbage inputs.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next pseudo-random 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
