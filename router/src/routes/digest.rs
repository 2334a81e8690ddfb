//! [`ContentDigest`]: what a set of files holds, so that a reload sees a certificate renewed
//! in place (same file name, new bytes) and the file watch sees a change that kept the size
//! and modification time.
use std::fmt;
use std::io;
use std::path::Path;

use ring::digest::{Context, SHA256};

/// The SHA-256 of some files' bytes, each length-prefixed so that moving bytes from one file
/// to the next gives another digest; of one file, its plain SHA-256 (what `sha256sum` prints,
/// so that an operator can check which bytes are in force). The digest of no files is all
/// zeros.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ContentDigest([u8; 32]);

impl ContentDigest {
    /// Reads every file in `paths`; fails with the first that cannot be read, naming it.
    pub fn of_files<'a>(paths: impl IntoIterator<Item = &'a Path>) -> io::Result<ContentDigest> {
        let paths: Vec<&Path> = paths.into_iter().collect();
        if paths.is_empty() {
            return Ok(ContentDigest::default());
        }
        let mut context = Context::new(&SHA256);
        for path in &paths {
            let bytes = std::fs::read(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            if paths.len() > 1 {
                context.update(&(bytes.len() as u64).to_le_bytes());
            }
            context.update(&bytes);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(context.finish().as_ref());
        Ok(ContentDigest(out))
    }
}

impl fmt::Display for ContentDigest {
    /// All 32 bytes in hex, as `sha256sum` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ContentDigest {
    /// The first 8 bytes in hex: enough to tell digests apart in a log or a test failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0.iter().take(8) {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_same_digest_and_a_byte_moved_between_files_differs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "ab").unwrap();
        std::fs::write(&b, "c").unwrap();
        let first = ContentDigest::of_files([a.as_path(), b.as_path()]).unwrap();
        assert_eq!(
            first,
            ContentDigest::of_files([a.as_path(), b.as_path()]).unwrap()
        );
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "bc").unwrap();
        assert_ne!(
            first,
            ContentDigest::of_files([a.as_path(), b.as_path()]).unwrap()
        );
        assert_eq!(
            ContentDigest::of_files([]).unwrap(),
            ContentDigest::default()
        );
        assert!(ContentDigest::of_files([dir.path().join("gone").as_path()]).is_err());
        // One file: its SHA-256, as sha256sum prints it (FIPS 180-2's "abc" example).
        std::fs::write(&a, "abc").unwrap();
        assert_eq!(
            ContentDigest::of_files([a.as_path()]).unwrap().to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
