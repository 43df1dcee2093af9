//! Output files written so that nothing planted at their names is followed or written through.
//!
//! Each file is created new (`O_CREAT|O_EXCL`, which refuses an existing name, symlinks
//! included) under a private temporary name beside its final path, written, and renamed over
//! the final path by [`AtomicFile::commit`]. A rename replaces the directory entry itself: a
//! symlink planted at the final name is replaced, never followed, so the file it points to is
//! left alone; a regular file there is replaced, as truncating it did before. Readers never
//! see a half-written file, and a run that fails leaves the old file in place and no
//! temporary behind (dropping an uncommitted file removes it).
//!
//! A device, FIFO or socket at the final path (`-o /dev/null`, `--html /dev/stdout`), or a
//! symlink to one, is written directly, as nothing can be renamed over it, but only when the
//! entry at the name belongs to root or to the user running mailsift: a FIFO or a link to a
//! disk planted by someone else is replaced like any other entry.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary names tried before giving up (each collision is a file someone else made).
const NAME_ATTEMPTS: u32 = 64;

/// Who may read a file while and after it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// As a newly created file usually is (0666 less the umask on Unix).
    Default,
    /// The owner only (0600 on Unix): for secrets and scratch copies of reports.
    Private,
}

/// A file being written under a temporary name, put in place by [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    /// `None` when writing straight to a device or FIFO.
    temp: Option<PathBuf>,
    target: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Creates a new temporary file beside `target`, to be renamed to `target` on commit.
    pub fn create(target: &Path, access: Access) -> io::Result<AtomicFile> {
        if let Some(file) = open_special(target)? {
            return Ok(AtomicFile {
                file,
                temp: None,
                target: target.to_path_buf(),
                committed: false,
            });
        }
        let (file, temp) = create_temp(target, access)?;
        Ok(AtomicFile {
            file,
            temp: Some(temp),
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// A private scratch file beside `near`, always a new temporary, removed on drop.
    pub fn scratch(near: &Path) -> io::Result<AtomicFile> {
        let (file, temp) = create_temp(near, Access::Private)?;
        Ok(AtomicFile {
            file,
            temp: Some(temp),
            target: near.to_path_buf(),
            committed: false,
        })
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary path the bytes go to until the commit (the target for a device).
    pub fn temp_path(&self) -> &Path {
        self.temp.as_deref().unwrap_or(&self.target)
    }

    /// A second handle on the same open file, for writers that take ownership of theirs.
    pub fn handle(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// Reads the file from its start into `out` (for scratch files copied into a report).
    pub fn copy_to(&mut self, out: &mut dyn Write) -> io::Result<u64> {
        self.file.rewind()?;
        io::copy(&mut &self.file, out)
    }

    /// Renames the temporary file over the final path; on failure the temporary is removed.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.flush()?;
        if let Some(temp) = &self.temp {
            fs::rename(temp, &self.target)?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let (false, Some(temp)) = (self.committed, &self.temp) {
            let _ = fs::remove_file(temp);
        }
    }
}

/// The device, FIFO or socket at `target` opened for writing, if that is what is there and
/// its entry (the link itself, for a symlink) belongs to root or to this process's user.
#[cfg(unix)]
fn open_special(target: &Path) -> io::Result<Option<File>> {
    use std::os::unix::fs::MetadataExt;
    let Ok(entry) = fs::symlink_metadata(target) else {
        return Ok(None);
    };
    let plain = |m: &fs::Metadata| m.is_file() || m.is_dir();
    if plain(&entry) {
        return Ok(None);
    }
    // A dangling symlink, or one to a file or folder, is replaced.
    match fs::metadata(target) {
        Ok(m) if !plain(&m) => {}
        _ => return Ok(None),
    }
    // Linux shows the process's effective user as the owner of `/proc/self`; elsewhere only
    // root's entries (`/dev/null`, `/dev/stdout`) are trusted.
    let me = fs::metadata("/proc/self").map(|m| m.uid()).ok();
    if entry.uid() != 0 && Some(entry.uid()) != me {
        return Ok(None);
    }
    OpenOptions::new().write(true).open(target).map(Some)
}

#[cfg(not(unix))]
fn open_special(_target: &Path) -> io::Result<Option<File>> {
    Ok(None)
}

/// Creates a file that did not exist, with an unpredictable name in `target`'s folder.
///
/// Unpredictable so that nobody can plant the name first to make the run fail; a collision
/// anyway (such a plant, or a leftover) just moves on to another name.
fn create_temp(target: &Path, access: Access) -> io::Result<(File, PathBuf)> {
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut last = None;
    for _ in 0..NAME_ATTEMPTS {
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{:016x}.tmp", random_suffix()));
        let temp = dir.join(temp_name);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(match access {
                Access::Default => 0o666,
                Access::Private => 0o600,
            });
        }
        #[cfg(not(unix))]
        let _ = access;
        match options.open(&temp) {
            Ok(f) => return Ok((f, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// 64 bits nobody else can guess: std's hasher keys come from the system's random source.
fn random_suffix() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temporary folder, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "mailsift-file-test-{tag}-{}-{:x}",
                std::process::id(),
                random_suffix()
            ));
            fs::create_dir_all(&p).expect("temp dir");
            TempDir(p)
        }

        fn names(&self) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(&self.0)
                .expect("read")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn nothing_is_at_the_final_name_until_commit() {
        let tmp = TempDir::new("commit");
        let target = tmp.0.join("out.json");
        let mut f = AtomicFile::create(&target, Access::Default).expect("create");
        f.write_all(b"hello").expect("write");
        assert!(!target.exists());
        let temp = f.temp_path().to_path_buf();
        assert!(temp.exists() && temp.parent() == target.parent());
        f.commit().expect("commit");
        assert_eq!(fs::read(&target).expect("read"), b"hello");
        assert_eq!(tmp.names(), ["out.json"]);
    }

    #[test]
    fn dropping_without_commit_leaves_the_old_file() {
        let tmp = TempDir::new("drop");
        let target = tmp.0.join("out.json");
        fs::write(&target, b"old").expect("write");
        let mut f = AtomicFile::create(&target, Access::Default).expect("create");
        f.write_all(b"new, half written").expect("write");
        drop(f);
        assert_eq!(fs::read(&target).expect("read"), b"old");
        assert_eq!(tmp.names(), ["out.json"]);
    }

    #[test]
    fn a_regular_file_is_replaced() {
        let tmp = TempDir::new("replace");
        let target = tmp.0.join("out.json");
        fs::write(&target, b"an earlier run, longer than the new one").expect("write");
        let mut f = AtomicFile::create(&target, Access::Default).expect("create");
        f.write_all(b"new").expect("write");
        f.commit().expect("commit");
        assert_eq!(fs::read(&target).expect("read"), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_final_name_is_replaced_not_followed() {
        let tmp = TempDir::new("symlink");
        let victim = tmp.0.join("victim");
        fs::write(&victim, b"precious").expect("write");
        let target = tmp.0.join("smtp.log");
        std::os::unix::fs::symlink(&victim, &target).expect("symlink");
        let mut f = AtomicFile::create(&target, Access::Default).expect("create");
        f.write_all(b"log").expect("write");
        f.commit().expect("commit");
        assert_eq!(fs::read(&victim).expect("read"), b"precious");
        let meta = fs::symlink_metadata(&target).expect("meta");
        assert!(meta.file_type().is_file());
        assert_eq!(fs::read(&target).expect("read"), b"log");
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new("mode");
        let target = tmp.0.join("hashes.txt");
        let f = AtomicFile::create(&target, Access::Private).expect("create");
        f.commit().expect("commit");
        let mode = fs::metadata(&target).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_scratch_file_reads_back_and_vanishes() {
        let tmp = TempDir::new("scratch");
        let mut f = AtomicFile::scratch(&tmp.0.join("r.html")).expect("create");
        f.write_all(b"section 1\nsection 2\n").expect("write");
        let mut out = Vec::new();
        assert_eq!(f.copy_to(&mut out).expect("copy"), 20);
        assert_eq!(out, b"section 1\nsection 2\n");
        drop(f);
        assert!(tmp.names().is_empty());
    }

    #[test]
    fn temporary_names_differ() {
        let tmp = TempDir::new("names");
        let target = tmp.0.join("a");
        let files: Vec<AtomicFile> = (0..20)
            .map(|_| AtomicFile::create(&target, Access::Default).expect("create"))
            .collect();
        let mut names: Vec<&Path> = files.iter().map(|f| f.temp_path()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 20);
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_written_directly_and_stay_devices() {
        use std::os::unix::fs::FileTypeExt;
        let mut f = AtomicFile::create(Path::new("/dev/null"), Access::Default).expect("open");
        f.write_all(b"discarded").expect("write");
        f.commit().expect("commit");
        let meta = fs::symlink_metadata("/dev/null").expect("meta");
        assert!(meta.file_type().is_char_device());
        // The user's own symlink to a device is followed too.
        let tmp = TempDir::new("device");
        let link = tmp.0.join("out");
        std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
        let mut f = AtomicFile::create(&link, Access::Default).expect("open");
        f.write_all(b"discarded").expect("write");
        f.commit().expect("commit");
        assert!(fs::symlink_metadata(&link).expect("meta").is_symlink());
        assert_eq!(tmp.names(), ["out"]);
    }

    #[test]
    fn a_folder_at_the_final_name_is_an_error() {
        let tmp = TempDir::new("folder");
        let target = tmp.0.join("out");
        fs::create_dir(&target).expect("dir");
        let f = AtomicFile::create(&target, Access::Default).expect("create");
        assert!(f.commit().is_err());
        assert!(target.is_dir());
        assert_eq!(tmp.names(), ["out"]);
    }
}
