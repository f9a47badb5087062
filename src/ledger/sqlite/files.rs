//! The ledger's files are private: the episodes hold alert text and evidence from people's mail,
//! and the service's own umask (022 outside systemd and the container) would make them
//! world-readable. The directory the service creates is 0700; the database and its lock file are
//! created 0600 whatever the umask, and SQLite creates `-wal` and `-shm` with the database
//! file's own permissions. Files and directories that already exist keep theirs: the operator
//! chose them.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Permissions of a file the ledger creates.
pub const FILE_MODE: u32 = 0o600;
/// Permissions of a directory the ledger creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents, each 0700, when it does not exist.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    // `mode` is cut by the umask; set it exactly on what this call created.
    for created in missing {
        std::fs::set_permissions(created, Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Opens `path` for writing, creating it 0600 when absent (never truncating).
pub fn open_private(path: &Path) -> io::Result<File> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(file) => {
            file.set_permissions(Permissions::from_mode(FILE_MODE))?;
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().write(true).open(path)
        }
        Err(e) => Err(e),
    }
}
