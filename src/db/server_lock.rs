//! The advisory lock on a SQLite database's lock file (`<database>.lock`, mode 0600): every
//! running server holds it shared for as long as it runs; `restore` needs it exclusively, so
//! it cannot replace the file under a server (which would keep writing to the replaced file
//! and lose those writes), and no server starts while a restore is under way.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// A held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DatabaseLock {
    _file: File,
    pub path: PathBuf,
}

/// The lock file next to the database at `db_path`.
pub fn lock_path(db_path: &str) -> PathBuf {
    PathBuf::from(format!("{db_path}.lock"))
}

/// Whether the lock is shared (servers) or exclusive (restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// Takes the lock of the database at `db_path` without waiting: `Ok(None)` when another
/// process holds it in a conflicting mode. The database's folder must exist.
pub fn try_acquire(db_path: &str, mode: Mode) -> std::io::Result<Option<DatabaseLock>> {
    let path = lock_path(db_path);
    let file = crate::private_files::open_or_create(&path).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
    })?;
    let taken = match mode {
        Mode::Shared => file.try_lock_shared(),
        Mode::Exclusive => file.try_lock(),
    };
    match taken {
        Ok(()) => Ok(Some(DatabaseLock { _file: file, path })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(std::io::Error::new(
            e.kind(),
            format!("cannot lock {}: {e}", path.display()),
        )),
    }
}

/// Creates the folder of the database at `db_path` (0700) when missing.
pub fn ensure_folder(db_path: &str) -> std::io::Result<()> {
    match Path::new(db_path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => crate::private_files::create_dir_all(dir)
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
            }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn servers_share_the_lock_and_a_restore_cannot_take_it_from_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        let db = db.to_str().unwrap();
        let a = try_acquire(db, Mode::Shared).unwrap();
        assert!(a.is_some());
        assert!(
            try_acquire(db, Mode::Shared).unwrap().is_some(),
            "a second server"
        );
        assert!(try_acquire(db, Mode::Exclusive).unwrap().is_none());
        drop(a);
        let r = try_acquire(db, Mode::Exclusive).unwrap();
        assert!(r.is_some());
        assert!(
            try_acquire(db, Mode::Shared).unwrap().is_none(),
            "no server during a restore"
        );
    }
}
