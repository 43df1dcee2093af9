//! Puts the git commit into `mailsift --version`, so a bug report names the code it came from.
//!
//! Outside a git checkout (a source tarball) or without git, the commit is `unknown`; a
//! packager can set `MAILSIFT_GIT_COMMIT` instead.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rustc-env=MAILSIFT_GIT_COMMIT={}", commit());
}

/// The short commit of HEAD, or `unknown`.
fn commit() -> String {
    println!("cargo:rerun-if-env-changed=MAILSIFT_GIT_COMMIT");
    // Without any rerun-if-changed line Cargo would rerun this on every change of any file.
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(given) = std::env::var("MAILSIFT_GIT_COMMIT")
        && !given.trim().is_empty()
    {
        return given.trim().to_string();
    }
    // A tarball unpacked inside some other repository must not take that one's commit.
    let here = std::env::var("CARGO_MANIFEST_DIR").ok().map(canonical);
    let top = git(&["rev-parse", "--show-toplevel"]).map(canonical);
    if here.is_none() || here != top {
        return "unknown".to_string();
    }
    // Rerun when HEAD moves: HEAD itself (a checkout) and the branch it names (a commit).
    // Only files that exist: a missing one would make Cargo rerun this, and so rebuild the
    // crate, on every build.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    if let Some(branch) = &branch {
        watched.push(git(&["rev-parse", "--git-path", branch]));
    }
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
}

/// `path` with symlinks resolved, so two spellings of one folder compare equal.
fn canonical(path: String) -> std::path::PathBuf {
    std::fs::canonicalize(&path).unwrap_or_else(|_| path.into())
}

/// What `git ARGS` prints, trimmed; `None` when git is missing, fails or prints nothing.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
