//! Files and folders only the service's own user may read: the data folder (0700), the
//! database, the generated master key, backups and masked exports (0600).

use std::io::Write;
use std::path::Path;

/// Creates `dir` and any missing parents with mode 0700; folders that already exist keep
/// their mode (an operator may have chosen it).
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates a new, empty file with mode 0600; fails when `path` exists.
pub fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Opens `path` for reading and writing, creating it empty with mode 0600 when missing
/// (an existing file keeps its contents and mode).
pub fn open_or_create(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Writes `content` and a newline into a new 0600 file.
pub fn write_new(path: &Path, content: &str) -> std::io::Result<()> {
    let mut f = create_new(path)?;
    f.write_all(content.as_bytes())?;
    f.write_all(b"\n")
}

/// Takes every permission from group and others (for a file copied from elsewhere).
pub fn restrict(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_are_0700_and_new_files_0600() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a").join("b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        let f = nested.join("f");
        write_new(&f, "x").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert!(
            write_new(&f, "y").is_err(),
            "an existing file is never overwritten"
        );
    }
}
