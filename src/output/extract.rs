//! `--extract DIR`: every message as an `.eml` file and every attachment as a file, with a
//! `manifest.json` that ties each file to its session, message, part and hashes.
//!
//! Each run writes into a new numbered folder `DIR/run-0001`, `DIR/run-0002`, ... created for
//! it, so a rerun never touches the files of an earlier run or anything else in `DIR`: the
//! number follows the highest one in `DIR`, and a name already taken (by a folder, a file or
//! a symlink, planted or raced) moves on to the next, with no last number to run out of.
//! Files are created exclusively and linked into place without replacing anything, so
//! nothing is ever written through a symlink or over an existing name.
//!
//! File names are built by mailsift, never taken from the traffic as they are:
//! `s<session>-m<message>.eml` for a message and `s<session>-m<message>-<part>-<name>` for an
//! attachment, where `<name>` is the sender's file name made safe: no path separators (so no
//! traversal and no absolute paths), no control or bidirectional-override characters, no
//! characters Windows forbids, no leading or trailing dots and blanks, no reserved device
//! names, and at most [`MAX_NAME_BYTES`] bytes. Names are unique within the run, even on
//! case-insensitive file systems. The original name is kept in the manifest.

use crate::mail::{AttachmentRecord, Spool};
use crate::session::{MessageBlob, MessageRecord, SessionRecord};
use serde::Serialize;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest sanitized original name kept in a file name (the whole name stays under 255 bytes).
pub const MAX_NAME_BYTES: usize = 120;
/// Longest extension kept when a name is shortened.
const MAX_EXTENSION_BYTES: usize = 16;

/// Why extraction failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The extraction folder exists but is not a folder.
    #[error("{0} exists and is not a folder")]
    NotADirectory(PathBuf),
    /// A folder could not be created or read.
    #[error("cannot use folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The manifest could not be serialised.
    #[error("cannot write the manifest: {0}")]
    Manifest(#[from] serde_json::Error),
}

/// What an extraction run produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtractSummary {
    /// The run's folder (inside the folder given).
    pub dir: PathBuf,
    /// Path of `manifest.json`.
    pub manifest: PathBuf,
    /// Messages written.
    pub messages: u64,
    /// Attachments written.
    pub attachments: u64,
    /// Bytes written in all files.
    pub bytes: u64,
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A whole message (`.eml`).
    Message,
    /// A decoded attachment, inline file or encapsulated message.
    Attachment,
}

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManifestEntry {
    /// File name inside the run folder.
    pub file: String,
    /// What it holds.
    pub kind: FileKind,
    /// Session id.
    pub session: u64,
    /// `smtp` or `pop3`.
    pub protocol: &'static str,
    /// Client endpoint of the session.
    pub client: String,
    /// Server endpoint of the session.
    pub server: String,
    /// Index of the message in the session.
    pub message: usize,
    /// Section number of the part (attachments).
    pub part: Option<String>,
    /// The sender's file name, decoded (attachments).
    pub original_name: Option<String>,
    /// `type/subtype` (attachments).
    pub content_type: Option<String>,
    /// Bytes in the file.
    pub size: u64,
    /// Size of the whole item in the traffic (larger than `size` when only a prefix was kept).
    pub original_size: u64,
    /// MD5 of the file, hex.
    pub md5: String,
    /// SHA-1 of the file, hex.
    pub sha1: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Whether the file holds the whole item (false after a gap, a cut or a size limit).
    pub complete: bool,
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    version: &'static str,
    files: &'a [ManifestEntry],
}

/// Writes extracted files for one run.
#[derive(Debug)]
pub struct Extractor {
    run_dir: PathBuf,
    used_names: HashSet<String>,
    entries: Vec<ManifestEntry>,
    messages: u64,
    attachments: u64,
    bytes: u64,
    spool: Option<Arc<Spool>>,
}

impl Extractor {
    /// Creates `dir` if needed and a new run folder inside it.
    pub fn create(dir: &Path) -> Result<Extractor, ExtractError> {
        if dir.exists() && !dir.is_dir() {
            return Err(ExtractError::NotADirectory(dir.to_path_buf()));
        }
        fs::create_dir_all(dir).map_err(|source| ExtractError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
        let run_dir = new_run_dir(dir)?;
        Ok(Extractor {
            run_dir,
            used_names: HashSet::new(),
            entries: Vec::new(),
            messages: 0,
            attachments: 0,
            bytes: 0,
            spool: None,
        })
    }

    /// The run's folder.
    pub fn dir(&self) -> &Path {
        &self.run_dir
    }

    /// Where messages and attachments are streamed while they are decoded: a folder inside
    /// the run folder (so files move into place by renaming), removed when the run finishes.
    pub fn spool(&mut self) -> Result<Arc<Spool>, ExtractError> {
        if let Some(s) = &self.spool {
            return Ok(Arc::clone(s));
        }
        let dir = self.run_dir.join(".spool");
        fs::create_dir(&dir).map_err(|source| ExtractError::Folder {
            path: dir.clone(),
            source,
        })?;
        let spool = Arc::new(Spool::new(dir));
        self.spool = Some(Arc::clone(&spool));
        Ok(spool)
    }

    /// Moves a message's spooled `.eml` and attachments into place under their names.
    pub fn message(&mut self, rec: &SessionRecord, blob: MessageBlob) -> Result<(), ExtractError> {
        let record = rec.messages.get(blob.message);
        let files = blob.files;
        let size = record.map_or(0, |m| m.size);
        let original_size = size + record.map_or(0, |m| m.missing_bytes);
        let whole = record.is_some_and(|m| m.complete);
        let base = format!("s{}-m{}", rec.id, blob.message);
        let file = self.move_unique(&base, ".eml", &files.eml, size)?;
        let mut e = entry(
            rec,
            blob.message,
            file,
            FileKind::Message,
            size,
            original_size,
            whole,
        );
        e.md5 = files.eml_md5.clone();
        e.sha1 = files.eml_sha1.clone();
        e.sha256 = record.map(|m| m.sha256.clone()).unwrap_or_default();
        self.entries.push(e);
        self.messages += 1;
        for content in files.attachments {
            let att = record.and_then(|m| attachment_record(m, &content.path));
            let filename = att.and_then(|a| a.filename.clone());
            let content_type = att.map(|a| a.content_type.clone()).unwrap_or_default();
            let name = filename.as_deref().map(sanitize_name).unwrap_or_default();
            let part = format!("{base}-{}", safe_path(&content.path));
            let (stem, ext) = if name.is_empty() {
                let ext = if content_type.starts_with("message/") {
                    ".eml"
                } else {
                    ".bin"
                };
                (part, ext.to_string())
            } else {
                let (body, ext) = split_extension(&name);
                (format!("{part}-{body}"), ext.to_string())
            };
            let file = self.move_unique(&stem, &ext, &content.file, content.size)?;
            let mut e = entry(
                rec,
                blob.message,
                file,
                FileKind::Attachment,
                content.size,
                content.size,
                att.is_none_or(|a| a.complete),
            );
            if let Some(a) = att {
                e.md5 = a.md5.clone();
                e.sha1 = a.sha1.clone();
                e.sha256 = a.sha256.clone();
            }
            e.part = Some(content.path.clone());
            e.original_name = filename;
            e.content_type = Some(content_type);
            self.entries.push(e);
            self.attachments += 1;
        }
        Ok(())
    }

    /// Writes `manifest.json` and returns what the run produced.
    pub fn finish(self) -> Result<ExtractSummary, ExtractError> {
        if let Some(spool) = &self.spool {
            // What is left there belongs to messages never reported (none in a normal run).
            let _ = fs::remove_dir_all(spool.dir());
        }
        let manifest = Manifest {
            tool: "mailsift",
            version: env!("CARGO_PKG_VERSION"),
            files: &self.entries,
        };
        let json = serde_json::to_vec_pretty(&manifest)?;
        let path = self.run_dir.join("manifest.json");
        write_new(&path, &json).map_err(|source| ExtractError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(ExtractSummary {
            dir: self.run_dir,
            manifest: path,
            messages: self.messages,
            attachments: self.attachments,
            bytes: self.bytes,
        })
    }

    /// Moves the spool file `from` to `stem` + `ext`, adding `~2`, `~3`, ... before the
    /// extension when the name is taken. Returns the file name.
    fn move_unique(
        &mut self,
        body: &str,
        ext: &str,
        from: &Path,
        size: u64,
    ) -> Result<String, ExtractError> {
        for n in 1u32..=u32::MAX {
            let name = if n == 1 {
                format!("{body}{ext}")
            } else {
                format!("{body}~{n}{ext}")
            };
            let key = name.to_lowercase();
            if self.used_names.contains(&key) {
                continue;
            }
            let path = self.run_dir.join(&name);
            match move_no_replace(from, &path) {
                Ok(()) => {
                    self.used_names.insert(key);
                    self.bytes += size;
                    return Ok(name);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    self.used_names.insert(key);
                }
                Err(source) => return Err(ExtractError::Write { path, source }),
            }
        }
        Err(ExtractError::Write {
            path: self.run_dir.join(format!("{body}{ext}")),
            source: io::Error::other("every numbered variant of this name is taken"),
        })
    }
}

/// The attachment record of the part at `path`.
fn attachment_record<'m>(m: &'m MessageRecord, path: &str) -> Option<&'m AttachmentRecord> {
    m.mime
        .as_ref()
        .and_then(|s| s.attachments.iter().find(|a| a.path == path))
}

fn entry(
    rec: &SessionRecord,
    message: usize,
    file: String,
    kind: FileKind,
    size: u64,
    original_size: u64,
    complete: bool,
) -> ManifestEntry {
    ManifestEntry {
        file,
        kind,
        session: rec.id,
        protocol: rec.protocol.as_str(),
        client: rec.client.to_string(),
        server: rec.server.to_string(),
        message,
        part: None,
        original_name: None,
        content_type: None,
        size,
        original_size,
        md5: String::new(),
        sha1: String::new(),
        sha256: String::new(),
        complete,
    }
}

/// Creates the next free `run-NNNN` folder in `dir`: after the highest number there, then
/// onwards past every name that turns out to be taken.
///
/// Numbers are read as `u64` and counted on in `u128`, so even a planted `run-` with the
/// largest number has a successor; names that do not parse only cost a failed `mkdir` each
/// when reached. `create_dir` refuses an existing entry of any kind, a symlink included, so
/// the folder is always one this run made.
fn new_run_dir(dir: &Path) -> Result<PathBuf, ExtractError> {
    let folder_error = |source| ExtractError::Folder {
        path: dir.to_path_buf(),
        source,
    };
    let mut highest = 0u64;
    for item in fs::read_dir(dir).map_err(folder_error)? {
        let item = item.map_err(folder_error)?;
        let name = item.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix("run-"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            highest = highest.max(n);
        }
    }
    let mut n = u128::from(highest);
    loop {
        n += 1;
        let path = dir.join(format!("run-{n:04}"));
        match fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(ExtractError::Folder { path, source }),
        }
    }
}

/// Moves `from` to `to` unless `to` exists (as anything, a dangling symlink included).
///
/// A hard link fails on an existing name where a rename would replace it; the spool name is
/// then removed. File systems without hard links fall back to a rename after a check.
fn move_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if to.symlink_metadata().is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, to)
        }
    }
}

/// Writes a file that must not exist yet.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create_new(path)?;
    f.write_all(bytes)?;
    f.flush()
}

/// A part path as used in file names (digits and dots only, as built by the decoder).
fn safe_path(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_ascii_digit() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Splits `name` into body and extension (with its dot), when the extension is short and plain.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i)
            if i > 0
                && name.len() - i <= MAX_EXTENSION_BYTES
                && name[i + 1..].chars().all(|c| c.is_alphanumeric())
                && !name[i + 1..].is_empty() =>
        {
            (&name[..i], &name[i..])
        }
        _ => (name, ""),
    }
}

/// Makes a sender-chosen file name safe to use as part of a file name (see the module docs).
pub fn sanitize_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| if unsafe_char(c) { '_' } else { c })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| c == '.' || c == ' ' || c == '_');
    let mut out = trimmed.to_string();
    // Device names are reserved on Windows whatever the extension.
    let stem = out
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_ascii_uppercase();
    let reserved = matches!(
        stem.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ((stem.starts_with("COM") || stem.starts_with("LPT"))
        && stem.chars().count() == 4
        && stem
            .chars()
            .skip(3)
            .all(|c| c.is_ascii_digit() || "¹²³".contains(c)));
    if reserved {
        out.insert(0, '_');
    }
    shorten(&out, MAX_NAME_BYTES)
}

/// Characters never written into a file name.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
        // Invisible and direction-changing characters disguise names (`exe.pdf`).
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

/// Cuts a name to `max` bytes at a character boundary, keeping a short extension.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (body, ext) = split_extension(name);
    let room = max.saturating_sub(ext.len() + 1);
    let mut end = room.min(body.len());
    while end > 0 && !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}~{}", &body[..end], ext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{Envelope, MessageCollector, StreamOptions};
    use crate::session::{Endpoint, MessageSource, Protocol};
    use crate::time::Timestamp;
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh folder under the system's temporary folder, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "mailsift-extract-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).expect("temp dir");
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn session_with(x: &mut Extractor, messages: &[&[u8]]) -> SessionRecord {
        let mut options = StreamOptions::new(Default::default());
        options.spool = Some(x.spool().expect("spool"));
        let ep = |port| Endpoint {
            ip: "198.51.100.4".parse().expect("ip"),
            port,
        };
        let mut rec = SessionRecord::new(42, Protocol::Smtp, ep(51000), ep(25), Timestamp(0));
        for m in messages {
            let mut c = MessageCollector::with_options(MessageSource::Data, Timestamp(1), &options);
            c.push(m, Timestamp(2));
            c.finish(Envelope::default(), true, &mut rec);
        }
        rec
    }

    fn attachment(name: &str, body: &str) -> String {
        use base64::Engine;
        format!(
            "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            base64::engine::general_purpose::STANDARD.encode(body)
        )
    }

    fn hostile_message() -> Vec<u8> {
        let long = "A".repeat(10_000) + ".txt";
        let names = [
            "../../etc/passwd",
            "/abs/path.sh",
            "C:\\Windows\\system32\\evil.dll",
            "CON",
            "con.txt",
            "\u{7}bell\u{1b}[31mred\r\n.txt",
            "invoice\u{202E}fdp.exe",
            long.as_str(),
            "same.txt",
            "SAME.txt",
            "same.txt",
            "...",
            "",
        ];
        let mut m =
            String::from("Subject: hostile\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
        for (i, n) in names.iter().enumerate() {
            m.push_str(&attachment(n, &format!("content {i}")));
        }
        m.push_str("--b--\r\n");
        m.into_bytes()
    }

    #[test]
    fn hostile_names_are_made_safe() {
        let tmp = TempDir::new();
        let mut x = Extractor::create(&tmp.0).expect("create");
        let mut rec = session_with(&mut x, &[&hostile_message()]);
        for blob in std::mem::take(&mut rec.blobs) {
            x.message(&rec, blob).expect("write");
        }
        let run = x.dir().to_path_buf();
        let summary = x.finish().expect("finish");
        assert_eq!(summary.attachments, 13);
        let mut names = Vec::new();
        for item in fs::read_dir(&run).expect("read") {
            let item = item.expect("entry");
            assert!(item.file_type().expect("type").is_file());
            names.push(item.file_name().into_string().expect("utf-8 name"));
        }
        assert_eq!(names.len(), 1 + 1 + 13);
        let lower: HashSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
        assert_eq!(
            lower.len(),
            names.len(),
            "case-insensitive collision in {names:?}"
        );
        for n in &names {
            assert!(n.len() < 255, "{n}");
            assert!(!n.chars().any(unsafe_char), "{n:?}");
            assert!(
                !n.starts_with('.') && !n.ends_with('.') && !n.ends_with(' '),
                "{n:?}"
            );
            let stem = n.split('.').next().unwrap_or("").to_ascii_uppercase();
            assert!(!["CON", "PRN", "AUX", "NUL"].contains(&stem.as_str()));
            assert!(n == "manifest.json" || n.starts_with("s42-m0"), "{n}");
        }
        // Contents are byte-exact and the manifest keeps the original names.
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(run.join("manifest.json")).expect("manifest"))
                .expect("json");
        let files = manifest["files"].as_array().expect("files");
        assert_eq!(files.len(), 14);
        let passwd = files
            .iter()
            .find(|f| f["original_name"] == "../../etc/passwd")
            .expect("entry");
        assert_eq!(passwd["file"], "s42-m0-1-etc_passwd");
        assert_eq!(
            fs::read(run.join("s42-m0-1-etc_passwd")).expect("read"),
            b"content 0"
        );
        assert_eq!(passwd["part"], "1");
        assert_eq!(passwd["kind"], "attachment");
        let con = files
            .iter()
            .find(|f| f["original_name"] == "CON")
            .expect("CON");
        assert_eq!(con["file"], "s42-m0-4-_CON");
        let rlo = files
            .iter()
            .find(|f| f["original_name"] == "invoice\u{202E}fdp.exe")
            .expect("rlo");
        assert_eq!(rlo["file"], "s42-m0-7-invoice_fdp.exe");
        let long = files.iter().find(|f| f["part"] == "8").expect("long");
        let long_name = long["file"].as_str().expect("name");
        assert!(
            long_name.ends_with("~.txt") && long_name.len() < 160,
            "{long_name}"
        );
        let same: Vec<&str> = files
            .iter()
            .filter(|f| {
                f["original_name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("same.txt"))
            })
            .map(|f| f["file"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            same,
            vec![
                "s42-m0-9-same.txt",
                "s42-m0-10-SAME.txt",
                "s42-m0-11-same.txt"
            ]
        );
        let abs = files.iter().find(|f| f["part"] == "2").expect("abs");
        assert_eq!(abs["file"], "s42-m0-2-abs_path.sh");
        let dots = files.iter().find(|f| f["part"] == "12").expect("dots");
        assert_eq!(dots["file"], "s42-m0-12.bin");
        let nameless = files.iter().find(|f| f["part"] == "13").expect("nameless");
        assert_eq!(nameless["file"], "s42-m0-13.bin");
        for f in files {
            let bytes = fs::read(run.join(f["file"].as_str().expect("file"))).expect("read");
            assert_eq!(f["sha256"], hex::encode(Sha256::digest(&bytes)));
            assert_eq!(f["size"], bytes.len() as u64);
        }
    }

    #[test]
    fn eml_is_byte_exact_and_manifest_links_it() {
        let tmp = TempDir::new();
        let msg = b"From: a@example.org\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nbody\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n";
        let mut x = Extractor::create(&tmp.0).expect("create");
        let mut rec = session_with(&mut x, &[msg, b"Subject: second\r\n\r\nx\r\n"]);
        for blob in std::mem::take(&mut rec.blobs) {
            x.message(&rec, blob).expect("write");
        }
        let s = x.finish().expect("finish");
        assert_eq!((s.messages, s.attachments), (2, 1));
        let eml = fs::read(s.dir.join("s42-m0.eml")).expect("eml");
        assert_eq!(eml, msg);
        assert_eq!(hex::encode(Sha256::digest(&eml)), rec.messages[0].sha256);
        let png = fs::read(s.dir.join("s42-m0-2.bin")).expect("png");
        assert_eq!(png, b"\x89PNG\r\n\x1a\n");
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(&s.manifest).expect("manifest")).expect("json");
        assert_eq!(manifest["tool"], "mailsift");
        let m0 = &manifest["files"][0];
        assert_eq!(m0["file"], "s42-m0.eml");
        assert_eq!(m0["kind"], "message");
        assert_eq!(m0["session"], 42);
        assert_eq!(m0["message"], 0);
        assert_eq!(m0["protocol"], "smtp");
        assert_eq!(m0["client"], "198.51.100.4:51000");
        assert_eq!(m0["sha256"], rec.messages[0].sha256);
        assert_eq!(m0["complete"], true);
        assert!(m0["part"].is_null());
        let a = &manifest["files"][1];
        assert_eq!(a["part"], "2");
        assert_eq!(a["content_type"], "image/png");
        assert_eq!(
            a["sha256"],
            rec.messages[0]
                .mime
                .as_ref()
                .map(|m| m.attachments[0].sha256.clone())
                .unwrap_or_default()
        );
        assert_eq!(manifest["files"][2]["file"], "s42-m1.eml");
        assert_eq!(
            s.bytes,
            (msg.len() + png.len() + "Subject: second\r\n\r\nx\r\n".len()) as u64
        );
    }

    #[test]
    fn reruns_get_their_own_folder_and_touch_nothing() {
        let tmp = TempDir::new();
        fs::write(tmp.0.join("notes.txt"), b"keep me").expect("write");
        fs::create_dir(tmp.0.join("run-0007")).expect("old run");
        fs::write(tmp.0.join("run-0007").join("s1-m0.eml"), b"old").expect("write");
        let mut dirs = Vec::new();
        for _ in 0..2 {
            let mut x = Extractor::create(&tmp.0).expect("create");
            let mut rec = session_with(&mut x, &[b"Subject: r\r\n\r\nbody\r\n"]);
            for blob in std::mem::take(&mut rec.blobs) {
                x.message(&rec, blob).expect("write");
            }
            dirs.push(x.finish().expect("finish").dir);
        }
        assert_eq!(dirs, vec![tmp.0.join("run-0008"), tmp.0.join("run-0009")]);
        assert_eq!(fs::read(tmp.0.join("notes.txt")).expect("read"), b"keep me");
        assert_eq!(
            fs::read(tmp.0.join("run-0007").join("s1-m0.eml")).expect("read"),
            b"old"
        );
        assert!(dirs[1].join("s42-m0.eml").is_file());
    }

    #[test]
    fn a_planted_last_run_number_does_not_stop_extraction() {
        for plant in ["file", "dir", "symlink", "max"] {
            let tmp = TempDir::new();
            let outside = tmp.0.join("outside");
            fs::create_dir(&outside).expect("outside");
            let dir = tmp.0.join("x");
            fs::create_dir(&dir).expect("dir");
            let planted = dir.join(if plant == "max" {
                format!("run-{}", u64::MAX)
            } else {
                "run-9999".to_string()
            });
            match plant {
                "file" => fs::write(&planted, b"x").expect("write"),
                #[cfg(unix)]
                "symlink" => std::os::unix::fs::symlink(&outside, &planted).expect("link"),
                _ => fs::create_dir(&planted).expect("mkdir"),
            }
            // A raced entry at the next number too: it is skipped, not replaced.
            let next = u128::from(if plant == "max" { u64::MAX } else { 9999 }) + 1;
            fs::write(dir.join(format!("run-{next}")), b"raced").expect("write");
            let mut x = Extractor::create(&dir).expect("create");
            let mut rec = session_with(&mut x, &[b"Subject: r\r\n\r\nbody\r\n"]);
            for blob in std::mem::take(&mut rec.blobs) {
                x.message(&rec, blob).expect("write");
            }
            let s = x.finish().expect("finish");
            assert_eq!(s.dir, dir.join(format!("run-{}", next + 1)), "{plant}");
            assert!(s.dir.join("s42-m0.eml").is_file());
            assert_eq!(fs::read_dir(&outside).expect("read").count(), 0, "{plant}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_planted_at_a_file_name_is_not_written_through() {
        let tmp = TempDir::new();
        let victim = tmp.0.join("victim");
        fs::write(&victim, b"precious").expect("write");
        let mut x = Extractor::create(&tmp.0.join("x")).expect("create");
        let mut rec = session_with(&mut x, &[b"Subject: r\r\n\r\nbody\r\n"]);
        std::os::unix::fs::symlink(&victim, x.dir().join("s42-m0.eml")).expect("link");
        std::os::unix::fs::symlink(&victim, x.dir().join("dangling")).expect("link");
        for blob in std::mem::take(&mut rec.blobs) {
            x.message(&rec, blob).expect("write");
        }
        let s = x.finish().expect("finish");
        assert_eq!(fs::read(&victim).expect("read"), b"precious");
        assert_eq!(
            fs::read(s.dir.join("s42-m0~2.eml")).expect("read"),
            b"Subject: r\r\n\r\nbody\r\n"
        );
        assert!(
            fs::symlink_metadata(s.dir.join("s42-m0.eml"))
                .expect("meta")
                .is_symlink()
        );
        assert!(!s.dir.join(".spool").exists());
    }

    #[test]
    fn a_file_is_not_a_folder() {
        let tmp = TempDir::new();
        let file = tmp.0.join("plain");
        fs::write(&file, b"x").expect("write");
        assert!(matches!(
            Extractor::create(&file),
            Err(ExtractError::NotADirectory(_))
        ));
        let nested = tmp.0.join("a").join("b");
        assert!(Extractor::create(&nested).is_ok());
        assert!(nested.join("run-0001").is_dir());
    }

    #[test]
    fn message_cut_by_a_gap_is_marked_incomplete() {
        let tmp = TempDir::new();
        let ep = |port| Endpoint {
            ip: "198.51.100.4".parse().expect("ip"),
            port,
        };
        let mut rec = SessionRecord::new(5, Protocol::Pop3, ep(51000), ep(110), Timestamp(0));
        let mut x = Extractor::create(&tmp.0).expect("create");
        let mut options = StreamOptions::new(Default::default());
        options.spool = Some(x.spool().expect("spool"));
        let mut c = MessageCollector::with_options(MessageSource::Retr, Timestamp(1), &options);
        c.push(b"Subject: long ", Timestamp(2));
        c.gap(21, Timestamp(2));
        c.push(b"message\r\n\r\nbody\r\n", Timestamp(2));
        c.finish(Envelope::default(), true, &mut rec);
        for blob in std::mem::take(&mut rec.blobs) {
            x.message(&rec, blob).expect("write");
        }
        let s = x.finish().expect("finish");
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(&s.manifest).expect("manifest")).expect("json");
        let m = &manifest["files"][0];
        assert_eq!(m["size"], 31);
        assert_eq!(m["original_size"], 52);
        assert_eq!(m["complete"], false);
        assert_eq!(m["protocol"], "pop3");
    }

    #[test]
    fn sanitize_examples() {
        assert_eq!(sanitize_name("report.pdf"), "report.pdf");
        assert_eq!(sanitize_name("  ..hidden.  "), "hidden");
        assert_eq!(sanitize_name("lpt1.txt"), "_lpt1.txt");
        assert_eq!(sanitize_name("COM9"), "_COM9");
        assert_eq!(sanitize_name("COM10"), "COM10");
        assert_eq!(sanitize_name("com¹.txt"), "_com¹.txt");
        assert_eq!(sanitize_name("a<b>c|d?.txt"), "a_b_c_d_.txt");
        assert_eq!(sanitize_name("Ünïcødé 名前.docx"), "Ünïcødé 名前.docx");
        let long = sanitize_name(&("é".repeat(200) + ".pdf"));
        assert!(
            long.len() <= MAX_NAME_BYTES && long.ends_with("~.pdf"),
            "{long}"
        );
    }
}
