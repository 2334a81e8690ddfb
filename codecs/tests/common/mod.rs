//! What the corpus conformance tests share: the one corpus finder of the workspace.
#![allow(unused_imports)] // each test binary uses its own subset

pub use corpus::{corpus_or_skip, files, read};
