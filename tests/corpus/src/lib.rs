//! The one way ganglion's tests find the shared sample corpus (real messages written by other
//! projects, read in place and never copied): `$GANGLION_CORPUS`, else `shared/corpus` beside
//! the checkout.
//!
//! A developer's clone without the corpus still passes, each corpus test saying it skipped. In CI
//! (`CI` set, as every CI system does) a missing corpus is a failure: conformance tests that
//! pass because they read nothing would hide a broken checkout.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// The corpus root, or `None` (after printing a notice) on a developer's machine without it.
///
/// # Panics
/// In CI when the corpus is absent.
pub fn find() -> Option<PathBuf> {
    let dir = match std::env::var_os("GANGLION_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    if in_ci() {
        panic!(
            "the shared corpus is missing ({}): in CI the conformance tests must read it; \
             set GANGLION_CORPUS or lay shared/ beside the checkout",
            dir.display()
        );
    }
    println!("corpus not found, skipped ({})", dir.display());
    None
}

/// The subfolder `sub` of the corpus (e.g. `"itk"`), on the same terms as [`find`]; a corpus
/// without it counts as missing.
pub fn find_sub(sub: &str) -> Option<PathBuf> {
    let dir = find()?.join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    if in_ci() {
        panic!("the shared corpus has no {sub}/ folder ({})", dir.display());
    }
    println!("corpus has no {sub}/, skipped");
    None
}

/// True where CI runs the tests (`CI` set to anything but `false` or `0`): what is missing
/// there fails instead of skipping. Other tests that need something a developer may not have
/// (a browser) decide the same way.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Every file below `dir`, sorted, so test output and failures come in a stable order.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("reading {}: {e}", d.display()))
                .path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The bytes of `rel` under the corpus root.
pub fn read(root: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The corpus root, or an early return from the calling test when it is absent (see [`find`]).
#[macro_export]
macro_rules! corpus_or_skip {
    () => {
        match $crate::find() {
            Some(dir) => dir,
            None => return,
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_listed_recursively_and_sorted() {
        let root = std::env::temp_dir().join(format!("corpus-files-{}", std::process::id()));
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("b/c/z.hl7"), b"x").unwrap();
        std::fs::write(root.join("a.hl7"), b"y").unwrap();
        let found = files(&root);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(found, vec![root.join("a.hl7"), root.join("b/c/z.hl7")]);
    }
}
