//! One coordinator per database: an exclusive advisory lock (`flock`) on `<db>.lock`, held for
//! as long as the serving [`Store`](super::Store) lives and released by the kernel when the
//! process dies (a `kill -9` leaves no stale lock). The file holds the holder's pid and host,
//! for the message a second coordinator gets. Read-only opens (`status --db`, `results --db`)
//! take no lock: SQLite's WAL lets them read beside the writer.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::StoreError;

/// The held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct DbLock {
    _file: File,
    path: PathBuf,
}

impl DbLock {
    /// The lock file of a database.
    pub fn path_of(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock of `db` without waiting, or says who holds it.
    pub fn acquire(db: &Path) -> Result<DbLock, StoreError> {
        let path = DbLock::path_of(db);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| StoreError::Lock {
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock on a file descriptor this function owns; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(StoreError::Locked {
                    db: db.to_path_buf(),
                    holder: holder.trim().to_string(),
                });
            }
            return Err(StoreError::Lock {
                path,
                source: error,
            });
        }
        let holder = format!(
            "pid {} on {}",
            std::process::id(),
            hostname().unwrap_or_else(|| "an unknown host".to_string())
        );
        let written = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(holder.as_bytes()))
            .and_then(|_| file.flush());
        if let Err(source) = written {
            return Err(StoreError::Lock { path, source });
        }
        Ok(DbLock { _file: file, path })
    }

    /// Where the lock lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer it is given.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sweeps.db");
        let first = DbLock::acquire(&db).unwrap();
        assert_eq!(first.path(), dir.path().join("sweeps.db.lock"));
        let err = DbLock::acquire(&db).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("sweeps.db"),
            "{err}"
        );
        drop(first);
        let again = DbLock::acquire(&db).unwrap();
        drop(again);
    }
}
