//! Shell completions and manual pages, generated from the same definitions as `--help`, so
//! they cannot fall behind the options.

use super::args::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::{self, Write};
use std::path::Path;

/// Writes the completion script for `shell` to standard output.
pub fn completions(shell: Shell) -> Result<()> {
    let mut cmd = Cli::command();
    // clap_complete panics when its writer fails; a buffer cannot, and a closed pipe
    // (`| head`) then ends the run quietly like every other output.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "mailsift", &mut script);
    write_stdout(&script)
}

/// Writes the manual page to standard output, or one page per command into `dir`.
pub fn man(dir: Option<&Path>) -> Result<()> {
    let cmd = Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
            eprintln!("mailsift: manual pages written into {}", dir.display());
            Ok(())
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            write_stdout(&page)
        }
    }
}

/// Writes `bytes` to standard output; a closed pipe is a normal end.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
