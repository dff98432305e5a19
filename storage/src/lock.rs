//! The data directory lock: one process at a time owns a data directory, via `flock` on
//! `LOCK` (released by the kernel when the owner dies, so a restart after SIGKILL just works).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::error::{Result, StorageError};
use crate::layout::DataDir;

/// Held while the process owns the data directory; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates the directory if needed and takes its lock, writing our pid into the lock file.
    /// Fails with a message naming the owner's pid when another process holds it.
    pub fn acquire(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root)
            .map_err(|e| StorageError::path_io(root, "create data directory", e))?;
        let path = DataDir::new(root).lock_file();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::path_io(&path, "open lock file", e))?;
        if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if e == rustix::io::Errno::WOULDBLOCK {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                let owner = owner.trim();
                let who = if owner.is_empty() {
                    "another process".to_string()
                } else {
                    format!("process {owner}")
                };
                return Err(StorageError::locked(format!(
                    "data directory {} is in use by {who} (lock file {})",
                    root.display(),
                    path.display()
                )));
            }
            return Err(StorageError::path_io(&path, "lock", e.into()));
        }
        let pid = std::process::id();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| writeln!(file, "{pid}"))
            .and_then(|()| file.sync_all())
            .map_err(|e| StorageError::path_io(&path, "write lock file", e))?;
        Ok(Self { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid written in the lock file of `root` if another live process holds the lock.
    pub fn holder(root: &Path) -> Option<String> {
        let path = DataDir::new(root).lock_file();
        let file = File::open(&path).ok()?;
        match flock(&file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => None,
            Err(_) => Some(
                std::fs::read_to_string(&path)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let first = DataDirLock::acquire(&root).unwrap();
        // flock locks belong to the open file description: a second open in this process conflicts too.
        let err = DataDirLock::acquire(&root).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("in use by process {}", std::process::id())),
            "{err}"
        );
        assert_eq!(
            DataDirLock::holder(&root),
            Some(std::process::id().to_string())
        );
        drop(first);
        assert_eq!(DataDirLock::holder(&root), None);
        DataDirLock::acquire(&root).unwrap();
    }
}
