//! Files that extraction streams message and attachment bytes into while they are decoded, so
//! no message is ever held whole in memory; the extraction sink later gives them their names.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A folder where spool files are created, shared by every message of a run.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    next: AtomicU64,
}

impl Spool {
    /// Spool files go into `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Spool {
            dir: dir.into(),
            next: AtomicU64::new(0),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a new spool file; a failure is carried by the file and reported when it closes.
    pub fn create(&self) -> SpoolFile {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!(".spool-{n:08}"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map(|f| BufWriter::with_capacity(64 << 10, f));
        match file {
            Ok(f) => SpoolFile {
                path,
                file: Some(f),
                error: None,
            },
            Err(e) => SpoolFile {
                path,
                file: None,
                error: Some(e),
            },
        }
    }
}

/// One file being written.
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    error: Option<io::Error>,
}

impl SpoolFile {
    /// Appends bytes; the first write error stops the file and is kept.
    pub fn write(&mut self, bytes: &[u8]) {
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.write_all(bytes)
        {
            self.error = Some(e);
            self.file = None;
        }
    }

    /// Flushes and closes the file: its path, and the error that stopped it, if any.
    pub fn close(mut self) -> (PathBuf, Option<io::Error>) {
        if let Some(mut f) = self.file.take()
            && let Err(e) = f.flush()
        {
            self.error = Some(e);
        }
        (self.path, self.error)
    }
}
