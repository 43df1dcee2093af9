//! NSS key log files (the `SSLKEYLOGFILE` format written by curl, Firefox, OpenSSL, Python's
//! `ssl` and many mail clients): one `LABEL <client_random hex> <secret hex>` per line.
//!
//! Secrets are matched to sessions by the 32-byte ClientHello random. Labels this crate cannot
//! use (`EARLY_EXPORTER_SECRET`, `EXPORTER_SECRET`, `CLIENT_EARLY_TRAFFIC_SECRET`, ...) are
//! skipped silently, since real files carry them; a line that names a known label but cannot be
//! read is reported with its file and line number and the rest of the file is still loaded, so
//! one damaged line never costs every other session its keys.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Length of a ClientHello random, the key every secret is filed under.
pub const RANDOM_LEN: usize = 32;

/// Length of a TLS 1.2 (and older) master secret.
pub const MASTER_SECRET_LEN: usize = 48;

/// A key log that cannot be used at all (as opposed to one with some bad lines).
#[derive(Debug, thiserror::Error)]
pub enum KeyLogError {
    /// The file could not be read.
    #[error("cannot read key log {}: {source}", path.display())]
    Read {
        /// The file asked for.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
}

/// Why one line of a key log was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// A known label without both of its fields.
    #[error("{label}: expected a client random and a secret")]
    MissingField {
        /// The line's label.
        label: String,
    },
    /// More than the three fields of the format.
    #[error("{label}: unexpected text after the secret")]
    TrailingField {
        /// The line's label.
        label: String,
    },
    /// A field that is not an even-length hex string.
    #[error("{label}: the {field} is not hex")]
    BadHex {
        /// The line's label.
        label: String,
        /// Which field (`client random` or `secret`).
        field: &'static str,
    },
    /// A client random that is not 32 bytes.
    #[error("{label}: the client random has {len} bytes, not 32")]
    BadRandomLength {
        /// The line's label.
        label: String,
        /// The bytes the line had.
        len: usize,
    },
    /// A secret of a length no cipher suite uses (48 for a master secret; 32 or 48 otherwise).
    #[error("{label}: a secret of {len} bytes")]
    BadSecretLength {
        /// The line's label.
        label: String,
        /// The bytes the line had.
        len: usize,
    },
}

/// A skipped line: where it was and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLogWarning {
    /// The file (or the name given to [`KeyLog::load_str`]).
    pub source: String,
    /// The 1-based line number.
    pub line: usize,
    /// What was wrong with it.
    pub error: LineError,
}

impl fmt::Display for KeyLogWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.error)
    }
}

/// The secrets known for one session (one client random).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionSecrets {
    /// TLS 1.2 and older: the master secret (`CLIENT_RANDOM`).
    pub master_secret: Option<Vec<u8>>,
    /// TLS 1.3: `CLIENT_HANDSHAKE_TRAFFIC_SECRET`.
    pub client_handshake: Option<Vec<u8>>,
    /// TLS 1.3: `SERVER_HANDSHAKE_TRAFFIC_SECRET`.
    pub server_handshake: Option<Vec<u8>>,
    /// TLS 1.3: `CLIENT_TRAFFIC_SECRET_0`.
    pub client_traffic: Option<Vec<u8>>,
    /// TLS 1.3: `SERVER_TRAFFIC_SECRET_0`.
    pub server_traffic: Option<Vec<u8>>,
}

// Secrets never go to a log or a panic message by accident.
impl fmt::Debug for SessionSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSecrets")
            .field("master_secret", &self.master_secret.is_some())
            .field("client_handshake", &self.client_handshake.is_some())
            .field("server_handshake", &self.server_handshake.is_some())
            .field("client_traffic", &self.client_traffic.is_some())
            .field("server_traffic", &self.server_traffic.is_some())
            .finish()
    }
}

/// Which slot of [`SessionSecrets`] a label fills.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Master,
    ClientHandshake,
    ServerHandshake,
    ClientTraffic,
    ServerTraffic,
}

fn slot(label: &str) -> Option<Slot> {
    Some(match label {
        "CLIENT_RANDOM" => Slot::Master,
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Slot::ClientHandshake,
        "SERVER_HANDSHAKE_TRAFFIC_SECRET" => Slot::ServerHandshake,
        "CLIENT_TRAFFIC_SECRET_0" => Slot::ClientTraffic,
        "SERVER_TRAFFIC_SECRET_0" => Slot::ServerTraffic,
        _ => return None,
    })
}

/// Secrets from one or more key log files, looked up by client random.
#[derive(Debug, Clone, Default)]
pub struct KeyLog {
    sessions: HashMap<[u8; RANDOM_LEN], SessionSecrets>,
}

impl KeyLog {
    /// An empty key log.
    pub fn new() -> Self {
        KeyLog::default()
    }

    /// Adds the secrets of the file at `path`; returns the lines that were skipped.
    pub fn load_file(&mut self, path: &Path) -> Result<Vec<KeyLogWarning>, KeyLogError> {
        let bytes = std::fs::read(path).map_err(|source| KeyLogError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // Lossy: a stray non-UTF-8 byte spoils its own line only (it then fails as hex).
        let text = String::from_utf8_lossy(&bytes);
        Ok(self.load_str(&path.display().to_string(), &text))
    }

    /// Adds the secrets in `text`, naming it `source` in warnings; returns the skipped lines.
    pub fn load_str(&mut self, source: &str, text: &str) -> Vec<KeyLogWarning> {
        let mut warnings = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if let Err(error) = self.load_line(line) {
                warnings.push(KeyLogWarning {
                    source: source.to_string(),
                    line: index + 1,
                    error,
                });
            }
        }
        warnings
    }

    fn load_line(&mut self, line: &str) -> Result<(), LineError> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let mut fields = line.split_ascii_whitespace();
        let label = fields.next().unwrap_or_default();
        let Some(slot) = slot(label) else {
            return Ok(());
        };
        let owned = || label.to_string();
        let (Some(random), Some(secret)) = (fields.next(), fields.next()) else {
            return Err(LineError::MissingField { label: owned() });
        };
        if fields.next().is_some() {
            return Err(LineError::TrailingField { label: owned() });
        }
        let random = hex::decode(random).map_err(|_| LineError::BadHex {
            label: owned(),
            field: "client random",
        })?;
        let random: [u8; RANDOM_LEN] =
            random
                .as_slice()
                .try_into()
                .map_err(|_| LineError::BadRandomLength {
                    label: owned(),
                    len: random.len(),
                })?;
        let secret = hex::decode(secret).map_err(|_| LineError::BadHex {
            label: owned(),
            field: "secret",
        })?;
        let length_ok = match slot {
            Slot::Master => secret.len() == MASTER_SECRET_LEN,
            // SHA-256 and SHA-384 suites are the only TLS 1.3 suites.
            _ => secret.len() == 32 || secret.len() == 48,
        };
        if !length_ok {
            return Err(LineError::BadSecretLength {
                label: owned(),
                len: secret.len(),
            });
        }
        let entry = self.sessions.entry(random).or_default();
        let field = match slot {
            Slot::Master => &mut entry.master_secret,
            Slot::ClientHandshake => &mut entry.client_handshake,
            Slot::ServerHandshake => &mut entry.server_handshake,
            Slot::ClientTraffic => &mut entry.client_traffic,
            Slot::ServerTraffic => &mut entry.server_traffic,
        };
        // A later line wins, as in Wireshark: files are appended to as sessions are retried.
        *field = Some(secret);
        Ok(())
    }

    /// The secrets for the session whose ClientHello carried `client_random`.
    pub fn get(&self, client_random: &[u8; RANDOM_LEN]) -> Option<&SessionSecrets> {
        self.sessions.get(client_random)
    }

    /// The number of distinct client randoms with at least one secret.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no secret was loaded.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "0101010101010101010101010101010101010101010101010101010101010101";
    const R2: &str = "0202020202020202020202020202020202020202020202020202020202020202";

    fn secret(byte: u8, len: usize) -> String {
        hex::encode(vec![byte; len])
    }

    #[test]
    fn loads_tls12_and_tls13_labels() {
        let text = format!(
            "# comment\n\nCLIENT_RANDOM {R1} {}\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {R2} {}\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {R2} {}\n\
             CLIENT_TRAFFIC_SECRET_0 {R2} {}\n\
             SERVER_TRAFFIC_SECRET_0 {R2} {}\r\n\
             EXPORTER_SECRET {R2} {}\n",
            secret(0xaa, 48),
            secret(1, 32),
            secret(2, 32),
            secret(3, 48),
            secret(4, 48),
            secret(5, 32),
        );
        let mut log = KeyLog::new();
        assert!(log.load_str("k", &text).is_empty());
        assert_eq!(log.len(), 2);
        let one = log.get(&[1; 32]).unwrap();
        assert_eq!(one.master_secret.as_deref(), Some(&[0xaa; 48][..]));
        assert!(one.client_traffic.is_none());
        let two = log.get(&[2; 32]).unwrap();
        assert_eq!(two.client_handshake.as_deref(), Some(&[1; 32][..]));
        assert_eq!(two.server_handshake.as_deref(), Some(&[2; 32][..]));
        assert_eq!(two.client_traffic.as_deref(), Some(&[3; 48][..]));
        assert_eq!(two.server_traffic.as_deref(), Some(&[4; 48][..]));
        assert!(two.master_secret.is_none());
        assert!(log.get(&[3; 32]).is_none());
    }

    #[test]
    fn garbage_lines_are_reported_and_the_rest_loaded() {
        let text = format!(
            "CLIENT_RANDOM {R1}\n\
             CLIENT_RANDOM zz{} {}\n\
             CLIENT_RANDOM 0102 {}\n\
             CLIENT_RANDOM {R1} {}\n\
             CLIENT_RANDOM {R1} {} extra\n\
             SERVER_TRAFFIC_SECRET_0 {R1} abc\n\
             total garbage \u{1}\u{2}\n\
             CLIENT_RANDOM {R2} {}\n",
            &R1[2..],
            secret(0, 48),
            secret(0, 48),
            secret(0, 47),
            secret(0, 48),
            secret(7, 48),
        );
        let mut log = KeyLog::new();
        let warnings = log.load_str("keys.txt", &text);
        let lines: Vec<usize> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6]);
        let label = || "CLIENT_RANDOM".to_string();
        assert_eq!(
            warnings[0].error,
            LineError::MissingField { label: label() }
        );
        assert_eq!(
            warnings[1].error,
            LineError::BadHex {
                label: label(),
                field: "client random"
            }
        );
        assert_eq!(
            warnings[2].error,
            LineError::BadRandomLength {
                label: label(),
                len: 2
            }
        );
        assert_eq!(
            warnings[3].error,
            LineError::BadSecretLength {
                label: label(),
                len: 47
            }
        );
        assert_eq!(
            warnings[4].error,
            LineError::TrailingField { label: label() }
        );
        assert!(matches!(
            warnings[5].error,
            LineError::BadHex {
                field: "secret",
                ..
            }
        ));
        assert_eq!(
            warnings[0].to_string(),
            "keys.txt:1: CLIENT_RANDOM: expected a client random and a secret"
        );
        assert_eq!(log.len(), 1);
        assert!(log.get(&[2; 32]).unwrap().master_secret.is_some());
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = KeyLog::new()
            .load_file(Path::new("/nonexistent/mailsift.keys"))
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/mailsift.keys"));
    }

    #[test]
    fn debug_hides_secrets() {
        let mut log = KeyLog::new();
        log.load_str("k", &format!("CLIENT_RANDOM {R1} {}", secret(0xab, 48)));
        assert!(!format!("{log:?}").contains("abab"));
    }
}
