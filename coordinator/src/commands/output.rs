//! A command's output on stdout.
//!
//! SIGPIPE stays ignored, as Rust leaves it: with its default disposition, a write to a socket
//! whose peer has gone (hyper writes HTTP/2 with `writev`, which raises the signal) kills the
//! process outright, a serving coordinator or a `coordinator run` with its workers included.
//! A reader that closes stdout early (`coordinator results ... | head`) therefore surfaces
//! here as [`StdoutClosed`], which `main` ends quietly, as Unix tools do.

use std::io::{ErrorKind, Write};

/// Stdout was closed by its reader: the end of a command's output, not a failure.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed by its reader")]
pub struct StdoutClosed;

/// Writes `bytes` to stdout and flushes them.
pub fn print(bytes: impl AsRef<[u8]>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes.as_ref()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}
