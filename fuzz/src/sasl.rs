//! SASL exchanges from fuzzer bytes: a mechanism, options, then challenge and response steps.
//!
//! Format: byte 0 picks a mechanism from [`MECHANISMS`] (an index past the list reads a
//! length-prefixed custom name); byte 1 holds options (bit 0 encrypted channel, bit 1 the first
//! step is the initial response, bits 2-3 the verdict: none, success, failure). Each step is a
//! control byte (bit 0: server challenge, else client response; bit 1: the bytes are base64-
//! encoded by the harness, so the fuzzer works on decoded messages; bit 2: two-byte length),
//! its length and its bytes.

use crate::input::Reader;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailsift::proto::sasl::SaslExchange;
use mailsift::time::Timestamp;

/// Mechanism names the first byte chooses among.
pub const MECHANISMS: [&str; 12] = [
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "DIGEST-MD5",
    "NTLM",
    "XOAUTH2",
    "OAUTHBEARER",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "GSSAPI",
    "EXTERNAL",
    "ANONYMOUS",
];

/// Most steps read from one input.
pub const MAX_STEPS: usize = 256;

/// Problems an exchange keeps at most (mirrors the library's private cap).
pub const MAX_PROBLEMS: usize = 16;

/// Who sent a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The server's challenge.
    Server,
    /// The client's response.
    Client,
}

/// Writes exchanges in the format [`run`] reads (for seeds).
#[derive(Debug, Clone)]
pub struct ExchangeWriter {
    /// The encoded exchange so far.
    pub bytes: Vec<u8>,
}

impl ExchangeWriter {
    /// Starts an exchange of `mechanism` (an index into [`MECHANISMS`]) with `options`.
    pub fn new(mechanism: usize, options: u8) -> Self {
        ExchangeWriter {
            bytes: vec![mechanism as u8, options],
        }
    }

    /// Adds a step whose bytes the harness will base64-encode.
    pub fn encoded(&mut self, side: Side, decoded: &[u8]) -> &mut Self {
        self.step(side, true, decoded)
    }

    /// Adds a step sent as these exact bytes (e.g. `*`, `=` or deliberately bad base64).
    pub fn raw(&mut self, side: Side, text: &[u8]) -> &mut Self {
        self.step(side, false, text)
    }

    fn step(&mut self, side: Side, encode: bool, data: &[u8]) -> &mut Self {
        let data = &data[..data.len().min(usize::from(u16::MAX))];
        let mut c = u8::from(side == Side::Server) | (u8::from(encode) << 1);
        if data.len() > usize::from(u8::MAX) {
            c |= 4;
            self.bytes.push(c);
            self.bytes
                .extend_from_slice(&(data.len() as u16).to_le_bytes());
        } else {
            self.bytes.push(c);
            self.bytes.push(data.len() as u8);
        }
        self.bytes.extend_from_slice(data);
        self
    }
}

/// Runs one exchange and checks the credential it yields.
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    let pick = usize::from(r.u8().unwrap_or(0));
    let name = match MECHANISMS.get(pick) {
        Some(name) => (*name).to_string(),
        None => {
            let len = usize::from(r.u8().unwrap_or(0) % 32);
            String::from_utf8_lossy(r.take(len)).into_owned()
        }
    };
    let options = r.u8().unwrap_or(0);
    let mut steps: Vec<(Side, String)> = Vec::new();
    while steps.len() < MAX_STEPS {
        let Some(c) = r.u8() else { break };
        let len = if c & 4 != 0 {
            usize::from(r.u16().unwrap_or(0))
        } else {
            usize::from(r.u8().unwrap_or(0))
        };
        let bytes = r.take(len);
        let text = if c & 2 != 0 {
            STANDARD.encode(bytes)
        } else {
            String::from_utf8_lossy(bytes).into_owned()
        };
        let side = if c & 1 != 0 {
            Side::Server
        } else {
            Side::Client
        };
        steps.push((side, text));
    }
    let mut steps = steps.into_iter();
    let initial = if options & 2 != 0 {
        steps.next().map(|(_, text)| text)
    } else {
        None
    };
    let ts = Timestamp::from_parts(1_700_000_000, 0);
    let mut exchange = SaslExchange::start(&name, initial.as_deref(), ts, options & 1 != 0);
    for (side, text) in steps {
        match side {
            Side::Server => exchange.server_challenge(&text),
            Side::Client => exchange.client_response(&text),
        }
        assert!(
            exchange.problems().len() <= MAX_PROBLEMS,
            "problem list grew past its cap"
        );
    }
    let cancelled = exchange.cancelled();
    let verdict = match (options >> 2) & 3 {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    };
    let credential = exchange.finish(verdict);
    assert_eq!(credential.details.cancelled, cancelled);
    assert_eq!(credential.success, verdict);
    // Escaping writes at most four characters per input byte (`\xNN`).
    let bound = 4 * data.len() + 64;
    for field in [
        &credential.username,
        &credential.password,
        &credential.details.authzid,
        &credential.details.token,
        &credential.details.domain,
        &credential.details.workstation,
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            field.len() <= bound,
            "field of {} chars from {} bytes",
            field.len(),
            data.len()
        );
    }
    serde_json::to_string(&credential).expect("a credential always serialises");
}
