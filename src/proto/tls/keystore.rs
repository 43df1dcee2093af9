//! The key logs of one run, shared by every session that needs a secret.
//!
//! Offline, the files are read once. While sniffing, clients append to their key log as they
//! connect, so a session whose secrets are not there yet makes the store look at the files
//! again (at most every [`RELOAD_INTERVAL`], and only when a file's size or time changed).

use super::keylog::{KeyLog, KeyLogError, KeyLogWarning, RANDOM_LEN, SessionSecrets};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// Least time between two looks at the files of a live store.
pub const RELOAD_INTERVAL: Duration = Duration::from_millis(100);

/// What a file looked like when it was last read.
type Stamp = Option<(u64, Option<SystemTime>)>;

#[derive(Debug)]
struct Loaded {
    log: KeyLog,
    stamps: Vec<Stamp>,
    checked: Option<Instant>,
}

/// Secrets by client random, from the key log files a run was given.
#[derive(Debug)]
pub struct KeyStore {
    files: Vec<PathBuf>,
    live: bool,
    loaded: Mutex<Loaded>,
}

fn stamp(path: &PathBuf) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()))
}

impl KeyStore {
    /// Reads `files`; `live` makes a lookup that misses read changed files again. Returns the
    /// store and the lines that were skipped; a file that cannot be read is an error.
    pub fn open(files: &[PathBuf], live: bool) -> Result<(Self, Vec<KeyLogWarning>), KeyLogError> {
        let mut log = KeyLog::new();
        let mut warnings = Vec::new();
        let mut stamps = Vec::new();
        for path in files {
            stamps.push(stamp(path));
            warnings.extend(log.load_file(path)?);
        }
        let store = KeyStore {
            files: files.to_vec(),
            live,
            loaded: Mutex::new(Loaded {
                log,
                stamps,
                checked: None,
            }),
        };
        Ok((store, warnings))
    }

    /// A store holding `log` and nothing to reload (for tests and embedders).
    pub fn from_log(log: KeyLog) -> Self {
        KeyStore {
            files: Vec::new(),
            live: false,
            loaded: Mutex::new(Loaded {
                log,
                stamps: Vec::new(),
                checked: None,
            }),
        }
    }

    /// Whether a miss may become a hit later (the files are re-read while sniffing).
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Sessions with secrets in the store now.
    pub fn len(&self) -> usize {
        self.lock().log.len()
    }

    /// True when the store holds no secret at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        // A panic elsewhere while holding the lock leaves a usable log behind.
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The secrets filed under `client_random`, if any.
    pub fn secrets(&self, client_random: &[u8; RANDOM_LEN]) -> Option<SessionSecrets> {
        self.lookup(client_random, false)
    }

    /// The same, reading changed files again whatever the time since the last look: for a
    /// session's last chance, when it ends.
    pub fn secrets_now(&self, client_random: &[u8; RANDOM_LEN]) -> Option<SessionSecrets> {
        self.lookup(client_random, true)
    }

    fn lookup(&self, client_random: &[u8; RANDOM_LEN], force: bool) -> Option<SessionSecrets> {
        let mut loaded = self.lock();
        if let Some(found) = loaded.log.get(client_random) {
            return Some(found.clone());
        }
        let recent = loaded
            .checked
            .is_some_and(|t| t.elapsed() < RELOAD_INTERVAL);
        if !self.live || (recent && !force) {
            return None;
        }
        loaded.checked = Some(Instant::now());
        for (i, path) in self.files.iter().enumerate() {
            let now = stamp(path);
            if loaded.stamps.get(i) != Some(&now) {
                // Lines already reported when the run started are not reported again.
                let _ = loaded.log.load_file(path);
                if let Some(slot) = loaded.stamps.get_mut(i) {
                    *slot = now;
                }
            }
        }
        loaded.log.get(client_random).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A fresh file path of this test process.
    fn temp_file(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mailsift-keystore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn append(path: &PathBuf, text: &str) {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    fn line(random: u8, secret: u8) -> String {
        format!(
            "CLIENT_RANDOM {} {}\n",
            hex::encode([random; 32]),
            hex::encode([secret; 48])
        )
    }

    #[test]
    fn offline_store_reads_once() {
        let path = temp_file("offline.log");
        std::fs::write(&path, line(1, 0xaa) + "CLIENT_RANDOM zz\n").unwrap();
        let (store, warnings) = KeyStore::open(std::slice::from_ref(&path), false).unwrap();
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].line, 2);
        assert!(store.secrets(&[1; 32]).is_some());
        append(&path, &line(2, 0xbb));
        assert!(
            store.secrets(&[2; 32]).is_none(),
            "offline stores do not reload"
        );
    }

    #[test]
    fn live_store_finds_lines_appended_later() {
        let path = temp_file("live.log");
        std::fs::write(&path, line(1, 0xaa)).unwrap();
        let (store, _) = KeyStore::open(std::slice::from_ref(&path), true).unwrap();
        assert!(store.secrets(&[2; 32]).is_none());
        append(&path, &line(2, 0xbb));
        std::thread::sleep(RELOAD_INTERVAL + Duration::from_millis(20));
        let found = store.secrets(&[2; 32]).expect("appended line is read");
        assert_eq!(found.master_secret.as_deref(), Some(&[0xbb; 48][..]));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let err = KeyStore::open(&[PathBuf::from("/nonexistent/keys.log")], false).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/keys.log"));
    }
}
