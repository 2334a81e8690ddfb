//! Files and folders that hold messages (patient data) or secrets: folders 0700, files 0600,
//! whatever the umask, and a check that an existing path is not open to group or others.
//!
//! Modes are given when a path is created (not `chmod`ed after), so there is no moment when a
//! file exists with wider permissions.
use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Owner only: read, write, enter.
pub const DIR_MODE: u32 = 0o700;
/// Owner only: read, write.
pub const FILE_MODE: u32 = 0o600;
/// The permission bits of group and others.
const SHARED_BITS: u32 = 0o077;

/// Creates `path` and any missing parents as 0700; an existing folder is left as it is.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Creates a new file (failing if `path` exists) as 0600, open for writing.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// A path that group or others can reach.
#[derive(Debug, thiserror::Error)]
#[error("{} is mode {mode:04o}: group or others can reach it", path.display())]
pub struct Shared {
    pub path: PathBuf,
    /// The permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

/// `Ok` when `path` exists and neither group nor others have any permission on it.
pub fn check_private(path: &Path) -> io::Result<Result<(), Shared>> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    Ok(if mode & SHARED_BITS == 0 {
        Ok(())
    } else {
        Err(Shared {
            path: path.to_path_buf(),
            mode,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn folders_and_files_are_private_and_shared_ones_are_named() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a/b");
        create_dir_all(&deep).unwrap();
        assert_eq!(mode(&root.path().join("a")), DIR_MODE);
        assert_eq!(mode(&deep), DIR_MODE);
        let file = deep.join("f");
        drop(create_new(&file).unwrap());
        assert_eq!(mode(&file), FILE_MODE);
        assert!(create_new(&file).is_err(), "never replaces a file");
        assert!(check_private(&deep).unwrap().is_ok());

        std::fs::set_permissions(&deep, std::fs::Permissions::from_mode(0o750)).unwrap();
        let shared = check_private(&deep).unwrap().unwrap_err();
        assert_eq!(shared.mode, 0o750);
        assert_eq!(
            shared.to_string(),
            format!(
                "{} is mode 0750: group or others can reach it",
                deep.display()
            )
        );
    }
}
