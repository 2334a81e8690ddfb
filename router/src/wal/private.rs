//! The log's files hold patient data: files are created 0600 and directories 0700, and ones
//! found looser (made by an older version, or by hand) are closed up when the log opens them.
//! The umask can only take permissions away, so these modes are what ends up on disk.
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub(crate) const FILE_MODE: u32 = 0o600;
pub(crate) const DIR_MODE: u32 = 0o700;

/// Options for creating a log file (add `create`/`create_new` and access as needed).
pub(crate) fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Creates `dir` (and missing parents) 0700, or closes up an existing one.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    close_up(dir, DIR_MODE)
}

/// Takes group and other permissions off an open file.
pub(crate) fn close_up_file(file: &File) -> io::Result<()> {
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(Permissions::from_mode(mode & FILE_MODE))?;
    }
    Ok(())
}

fn close_up(path: &Path, keep: u32) -> io::Result<()> {
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, Permissions::from_mode(mode & keep))?;
    }
    Ok(())
}
