//! A [`Decryptor`] per TLS session: frames each direction's byte stream into records, picks the
//! keys the record needs, and hands back the plaintext.
//!
//! Each direction is read on its own, as the observer reads them. TLS 1.3 records are opened
//! with the handshake keys until that direction's Finished, then with the traffic keys (a
//! KeyUpdate moves them on); when a key log lacks the handshake secrets, or a record does not
//! open with them, the traffic keys are tried, so a partial key log still yields the
//! application data. TLS 1.2 records are opened from the direction's ChangeCipherSpec on.

use super::DecryptError;
use super::prf::key_block;
use super::suite::SuiteParams;
use super::tls12::Tls12RecordDecrypter;
use super::tls13::Tls13RecordDecrypter;
use crate::direction::{Direction, PerDirection};
use crate::proto::tls::handshake::{ClientHello, ServerHello};
use crate::proto::tls::keylog::{KeyLog, SessionSecrets};
use crate::proto::tls::{CipherSuite, ExtensionType, TlsVersion};

/// The largest record body TLS allows (2^14 plus the 2048 bytes of expansion of TLS 1.2).
const MAX_BODY: usize = (1 << 14) + 2048;
/// Record content types.
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
/// Handshake message types that change keys.
const FINISHED: u8 = 20;
const KEY_UPDATE: u8 = 24;

/// What a session negotiated, as far as decryption needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionParams {
    /// The ClientHello random, the key log's index.
    pub client_random: [u8; 32],
    /// The ServerHello random.
    pub server_random: [u8; 32],
    /// The negotiated version.
    pub version: TlsVersion,
    /// The chosen cipher suite.
    pub suite: CipherSuite,
    /// True when the server accepted encrypt_then_mac (it echoes only what was offered).
    pub encrypt_then_mac: bool,
    /// True when the server accepted extended_master_secret; informational, as a key log
    /// holds the master secret whichever way it was derived.
    pub extended_master_secret: bool,
}

impl SessionParams {
    /// The parameters of the session these two hellos set up.
    pub fn from_hellos(client: &ClientHello<'_>, server: &ServerHello<'_>) -> Self {
        let both = |kind| client.extension(kind).is_some() && server.extension(kind).is_some();
        SessionParams {
            client_random: client.random,
            server_random: server.random,
            version: server.negotiated_version(),
            suite: server.cipher_suite,
            encrypt_then_mac: both(ExtensionType::ENCRYPT_THEN_MAC),
            extended_master_secret: both(ExtensionType::EXTENDED_MASTER_SECRET),
        }
    }
}

/// Why a session cannot be decrypted at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The key log has no secret for this client random (or none this version can use).
    #[error("no key in the key log for this session")]
    NoKeys,
    /// A version other than TLS 1.2 or 1.3.
    #[error("TLS version {0:#06x} is not decrypted")]
    UnsupportedVersion(u16),
    /// The suite or the secrets cannot be used.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
}

/// What a record held, once opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plaintext {
    /// Application data, in stream order.
    ApplicationData(Vec<u8>),
    /// Handshake bytes that travelled encrypted (TLS 1.3 EncryptedExtensions, Certificate,
    /// Finished, tickets, KeyUpdate; the TLS 1.2 Finished).
    Handshake(Vec<u8>),
    /// An encrypted alert's two bytes.
    Alert(Vec<u8>),
    /// A protected record of `len` bytes that did not authenticate: its content is unknown.
    Undecryptable {
        /// The record's body length (ciphertext and its overhead).
        len: usize,
    },
}

/// Counts of one direction's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Records that authenticated and were opened.
    pub decrypted: u64,
    /// Of those, records holding handshake messages.
    pub handshake_decrypted: u64,
    /// Protected records that did not authenticate under any key held.
    pub failed: u64,
    /// Records sent in the clear (hellos, ChangeCipherSpec).
    pub clear: u64,
    /// True once the stream stopped looking like TLS records; nothing after is read.
    pub desync: bool,
}

#[derive(Debug)]
enum Keys {
    Tls13 {
        handshake: Option<Tls13RecordDecrypter>,
        traffic: Option<Tls13RecordDecrypter>,
        in_traffic: bool,
        /// Handshake bytes not yet forming a whole message, to find Finished and KeyUpdate.
        pending: Vec<u8>,
    },
    Tls12 {
        records: Tls12RecordDecrypter,
        after_ccs: bool,
    },
}

#[derive(Debug)]
struct DirectionState {
    keys: Keys,
    buffer: Vec<u8>,
    stats: DirectionStats,
    /// Protected records that failed since the last one that opened.
    missed: u64,
}

/// Most sequence numbers tried past the expected one after records failed.
const MAX_RESYNC: u64 = 8;

/// A record decrypter whose sequence number can be moved on.
trait Sequenced: Clone {
    fn skip(&mut self, n: u64);
}

impl Sequenced for Tls12RecordDecrypter {
    fn skip(&mut self, n: u64) {
        Tls12RecordDecrypter::skip(self, n);
    }
}

impl Sequenced for Tls13RecordDecrypter {
    fn skip(&mut self, n: u64) {
        Tls13RecordDecrypter::skip(self, n);
    }
}

/// Opens a record with the expected sequence number, else, after `missed` records failed,
/// with each of the next few: a record damaged on the way spent its number at the sender, a
/// forged one did not, and either way the records after it still open.
fn open_resync<D: Sequenced, T>(
    d: &mut D,
    missed: u64,
    open: impl Fn(&mut D) -> Result<T, DecryptError>,
) -> Result<T, DecryptError> {
    let first = match open(d) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    for k in 1..=missed.min(MAX_RESYNC) {
        let mut later = d.clone();
        later.skip(k);
        if let Ok(v) = open(&mut later) {
            *d = later;
            return Ok(v);
        }
    }
    Err(first)
}

/// Decrypts both directions of one TLS session.
#[derive(Debug)]
pub struct Decryptor {
    directions: PerDirection<DirectionState>,
}

fn tls13_keys(
    params: SuiteParams,
    handshake: Option<&Vec<u8>>,
    traffic: Option<&Vec<u8>>,
) -> Result<Keys, DecryptError> {
    let handshake = handshake
        .map(|s| Tls13RecordDecrypter::new(params, s))
        .transpose()?;
    let traffic = traffic
        .map(|s| Tls13RecordDecrypter::new(params, s))
        .transpose()?;
    Ok(Keys::Tls13 {
        in_traffic: handshake.is_none(),
        handshake,
        traffic,
        pending: Vec::new(),
    })
}

impl Decryptor {
    /// A decryptor for the session `params` describes, with its secrets from `keylog`.
    pub fn new(params: &SessionParams, keylog: &KeyLog) -> Result<Self, SessionError> {
        let secrets = keylog
            .get(&params.client_random)
            .ok_or(SessionError::NoKeys)?;
        Self::with_secrets(params, secrets)
    }

    /// A decryptor from the secrets of one session.
    pub fn with_secrets(
        params: &SessionParams,
        secrets: &SessionSecrets,
    ) -> Result<Self, SessionError> {
        let suite = SuiteParams::for_suite(params.suite)?;
        let (client, server) = match params.version {
            TlsVersion::TLS13 => {
                if !suite.tls13 {
                    return Err(DecryptError::UnsupportedSuite(params.suite.0).into());
                }
                let any = [
                    &secrets.client_handshake,
                    &secrets.server_handshake,
                    &secrets.client_traffic,
                    &secrets.server_traffic,
                ];
                if any.iter().all(|s| s.is_none()) {
                    return Err(SessionError::NoKeys);
                }
                (
                    tls13_keys(
                        suite,
                        secrets.client_handshake.as_ref(),
                        secrets.client_traffic.as_ref(),
                    )?,
                    tls13_keys(
                        suite,
                        secrets.server_handshake.as_ref(),
                        secrets.server_traffic.as_ref(),
                    )?,
                )
            }
            TlsVersion::TLS12 => {
                if suite.tls13 {
                    return Err(DecryptError::UnsupportedSuite(params.suite.0).into());
                }
                let master = secrets.master_secret.as_ref().ok_or(SessionError::NoKeys)?;
                let block =
                    key_block(&suite, master, &params.client_random, &params.server_random)?;
                let etm = params.encrypt_then_mac;
                (
                    Keys::Tls12 {
                        records: Tls12RecordDecrypter::new(&suite, &block.client, etm)?,
                        after_ccs: false,
                    },
                    Keys::Tls12 {
                        records: Tls12RecordDecrypter::new(&suite, &block.server, etm)?,
                        after_ccs: false,
                    },
                )
            }
            other => return Err(SessionError::UnsupportedVersion(other.0)),
        };
        let state = |keys| DirectionState {
            keys,
            buffer: Vec::new(),
            stats: DirectionStats::default(),
            missed: 0,
        };
        Ok(Decryptor {
            directions: PerDirection {
                client: state(client),
                server: state(server),
            },
        })
    }

    /// Takes the next bytes of `dir`'s TLS stream (from its first record on, in any chunking)
    /// and returns the plaintext of the records they complete.
    pub fn feed(&mut self, dir: Direction, bytes: &[u8]) -> Vec<Plaintext> {
        let state = self.directions.get_mut(dir);
        let mut out = Vec::new();
        if state.stats.desync {
            return out;
        }
        state.buffer.extend_from_slice(bytes);
        let mut at = 0;
        while let Some(header) = state.buffer.get(at..at + 5) {
            let header: [u8; 5] = header.try_into().expect("five bytes");
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            if !(CHANGE_CIPHER_SPEC..=24).contains(&header[0]) || header[1] != 3 || len > MAX_BODY {
                state.stats.desync = true;
                state.buffer.clear();
                return out;
            }
            let Some(body) = state.buffer.get(at + 5..at + 5 + len) else {
                break;
            };
            let (failed, opened) = (state.stats.failed, state.stats.decrypted);
            record(
                &mut state.keys,
                &mut state.stats,
                state.missed,
                &header,
                body,
                &mut out,
            );
            if state.stats.failed > failed {
                state.missed += 1;
            } else if state.stats.decrypted > opened {
                state.missed = 0;
            }
            at += 5 + len;
        }
        state.buffer.drain(..at);
        out
    }

    /// The record counts of `dir` so far.
    pub fn stats(&self, dir: Direction) -> DirectionStats {
        self.directions.get(dir).stats
    }
}

/// Opens (or counts as clear) one whole record of a direction.
fn record(
    keys: &mut Keys,
    stats: &mut DirectionStats,
    missed: u64,
    header: &[u8; 5],
    body: &[u8],
    out: &mut Vec<Plaintext>,
) {
    {
        match keys {
            Keys::Tls12 { records, after_ccs } => {
                if !*after_ccs {
                    stats.clear += 1;
                    *after_ccs = header[0] == CHANGE_CIPHER_SPEC;
                    return;
                }
                match open_resync(records, missed, |r| r.open(header, body)) {
                    Ok(plain) => {
                        stats.decrypted += 1;
                        out.push(match header[0] {
                            HANDSHAKE => {
                                stats.handshake_decrypted += 1;
                                Plaintext::Handshake(plain)
                            }
                            ALERT => Plaintext::Alert(plain),
                            _ => Plaintext::ApplicationData(plain),
                        });
                    }
                    Err(_) => {
                        stats.failed += 1;
                        out.push(Plaintext::Undecryptable { len: body.len() });
                    }
                }
            }
            Keys::Tls13 {
                handshake,
                traffic,
                in_traffic,
                pending,
            } => {
                if header[0] != APPLICATION_DATA {
                    stats.clear += 1;
                    return;
                }
                let mut opened = None;
                if !*in_traffic && let Some(hs) = handshake.as_mut() {
                    opened = hs.open(header, body).ok();
                }
                if opened.is_none()
                    && let Some(tr) = traffic.as_mut()
                    && let Ok(plain) = open_resync(tr, missed, |t| t.open(header, body))
                {
                    // The handshake keys are done once a record opens with the traffic keys.
                    *in_traffic = true;
                    pending.clear();
                    opened = Some(plain);
                }
                let Some((kind, plain)) = opened else {
                    stats.failed += 1;
                    out.push(Plaintext::Undecryptable { len: body.len() });
                    return;
                };
                stats.decrypted += 1;
                match kind {
                    HANDSHAKE => {
                        stats.handshake_decrypted += 1;
                        pending.extend_from_slice(&plain);
                        while pending.len() >= 4 {
                            let len = usize::from(pending[1]) << 16
                                | usize::from(pending[2]) << 8
                                | usize::from(pending[3]);
                            if pending.len() < 4 + len {
                                break;
                            }
                            match pending[0] {
                                FINISHED if !*in_traffic => *in_traffic = true,
                                KEY_UPDATE if *in_traffic => {
                                    if let Some(tr) = traffic.as_mut()
                                        && tr.key_update().is_err()
                                    {
                                        *traffic = None;
                                    }
                                }
                                _ => {}
                            }
                            pending.drain(..4 + len);
                        }
                        out.push(Plaintext::Handshake(plain));
                    }
                    ALERT => out.push(Plaintext::Alert(plain)),
                    _ => out.push(Plaintext::ApplicationData(plain)),
                }
            }
        }
    }
}
