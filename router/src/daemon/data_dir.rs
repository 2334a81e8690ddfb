//! The data directory at start-up: made (0700) when absent, refused when group or others can
//! reach into it, since it holds every message in the log and every dead letter.
//!
//! Only the directory itself is checked: while it is 0700 no other user can reach anything
//! below it, whatever the modes in there (files left 0644 by an older version included).
use std::path::Path;

use super::RunError;
use crate::private_fs;

/// Makes sure `dir` exists and is private; `allow_shared` (the operator's explicit choice)
/// turns the refusal into a warning.
pub fn prepare(dir: &Path, allow_shared: bool) -> Result<(), RunError> {
    let io = |source| RunError::Io {
        what: format!("data directory {}", dir.display()),
        source,
    };
    private_fs::create_dir_all(dir).map_err(io)?;
    match private_fs::check_private(dir).map_err(io)? {
        Ok(()) => Ok(()),
        Err(shared) if allow_shared => {
            tracing::warn!(
                "the data directory {shared}, and holds messages; started anyway \
                 (allow_shared_data_dir)"
            );
            Ok(())
        }
        Err(shared) => Err(RunError::SharedDataDir(shared)),
    }
}
