//! What the corpus conformance tests share: finding the corpus, walking it, reading from it.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};

/// The shared sample corpus: `$GANGLION_CORPUS`, else `../shared/corpus` beside the workspace.
pub fn corpus() -> Option<PathBuf> {
    let dir = match std::env::var_os("GANGLION_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"),
    };
    dir.is_dir().then_some(dir)
}

/// The corpus folder, or a printed notice and an early return when it is absent (so a clone
/// elsewhere still passes).
#[macro_export]
macro_rules! corpus_or_skip {
    () => {
        match common::corpus() {
            Some(dir) => dir,
            None => {
                println!("corpus not found, skipped");
                return;
            }
        }
    };
}

/// Every file below `dir`, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
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
