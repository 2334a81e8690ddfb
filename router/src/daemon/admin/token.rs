//! The admin token: a secret in a file that only its owner can read. The router reads it at
//! start-up (making the default one when absent); `ganglion reload` and `ganglion dead-letters
//! --admin` read the same file and send it as `Authorization: Bearer …`.
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

use crate::private_fs;

/// Shorter tokens are refused: they could be guessed.
pub const MIN_LEN: usize = 16;
/// Random bytes in a token the router makes (written as hex).
const GENERATED_BYTES: usize = 32;

/// A token as the file holds it, trimmed of surrounding white space.
#[derive(Clone)]
pub struct Token(Box<[u8]>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)") // never printed
    }
}

impl Token {
    /// Whether `presented` is this token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.ct_eq(presented).into()
    }

    /// The token for an `Authorization` header.
    pub fn as_str(&self) -> &str {
        // Only ever built from a `str` (see `parse`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    fn parse(path: &Path, text: &str) -> Result<Token, TokenError> {
        let token = text.trim();
        if token.len() < MIN_LEN {
            return Err(TokenError::TooShort {
                path: path.to_path_buf(),
                len: token.len(),
            });
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotPrintable(path.to_path_buf()));
        }
        Ok(Token(token.as_bytes().into()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The cause follows in the error's chain.
    #[error("cannot {op} the admin token file {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "the admin token file {0}: anyone who can read it controls the router; \
         make it private: chmod 600 {path}",
        path = .0.path.display()
    )]
    Shared(private_fs::Shared),
    #[error(
        "the admin token file {} holds {len} characters; use at least {MIN_LEN} random ones \
         (for example `openssl rand -hex 32`)",
        path.display()
    )]
    TooShort { path: PathBuf, len: usize },
    #[error("the admin token file {} holds characters other than printable ASCII", .0.display())]
    NotPrintable(PathBuf),
    #[error("no random numbers for a new admin token: {0}")]
    Random(String),
}

fn io_error<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> TokenError + 'p {
    move |source| TokenError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The router's token: read from `path`, which must be 0600 or stricter. When `create` is set
/// and the file does not exist, a new random token is written there first (0600).
pub fn load(path: &Path, create: bool) -> Result<Token, TokenError> {
    if create && !path.exists() {
        write_new(path)?;
        tracing::info!("admin token written to {}", path.display());
    }
    private_fs::check_private(path)
        .map_err(io_error("read", path))?
        .map_err(TokenError::Shared)?;
    read(path)
}

/// A token as a client reads it (the router has already checked the file's mode).
pub fn read(path: &Path) -> Result<Token, TokenError> {
    let text = std::fs::read_to_string(path).map_err(io_error("read", path))?;
    Token::parse(path, &text)
}

fn write_new(path: &Path) -> Result<(), TokenError> {
    let mut bytes = [0u8; GENERATED_BYTES];
    crate::tls::config::provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|e| TokenError::Random(format!("{e:?}")))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_fs::create_dir_all(dir).map_err(io_error("create the folder of", path))?;
    }
    let mut file = private_fs::create_new(path).map_err(io_error("create", path))?;
    file.write_all(format!("{hex}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_token_is_random_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        let token = load(&path, true).unwrap();
        assert_eq!(token.as_str().len(), 2 * GENERATED_BYTES);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(load(&path, true)
            .unwrap()
            .matches(token.as_str().as_bytes()));
        let other = dir.path().join("other.token");
        assert!(!load(&other, true)
            .unwrap()
            .matches(token.as_str().as_bytes()));
    }

    #[test]
    fn shared_short_and_missing_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let shared = load(&path, false).unwrap_err().to_string();
        assert!(
            shared.contains(&format!("{} is mode 0640", path.display())),
            "{shared}"
        );
        assert!(shared.contains("chmod 600"), "{shared}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        let token = load(&path, false).unwrap();
        assert!(token.matches(b"0123456789abcdef0123"));
        assert!(!token.matches(b"0123456789abcdef012"));
        assert!(!token.matches(b"0123456789abcdef0124"));

        std::fs::write(dir.path().join("short"), "secret\n").unwrap();
        assert!(matches!(
            read(&dir.path().join("short")),
            Err(TokenError::TooShort { len: 6, .. })
        ));
        assert!(matches!(
            load(&dir.path().join("absent"), false),
            Err(TokenError::Io { .. })
        ));
    }
}
