//! Diagnostics: every problem found in `routes.toml` or the endpoint directory, with where it is.
//!
//! A [`Diagnostic`] carries the file, a 1-based line and (for TOML) a 1-based column counted in
//! characters, a severity, the message and an optional hint. Positions are computed from byte
//! spans through a [`LineIndex`] built once per file, so the parser and the compiler only ever
//! keep byte ranges. Rendering lives here too: the human form
//! (`routes.toml:12:1: error: …` plus the source line and a caret) and the JSON form (one object
//! per line) that `ganglion check --json` prints.
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How bad a diagnostic is. Warnings do not stop a table from loading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem, positioned in a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file as the operator named it (the `--config` path, or the directory path joined to
    /// the config file's folder).
    pub file: PathBuf,
    /// 1-based line; `None` when the problem is with the file as a whole (cannot be read).
    pub line: Option<u32>,
    /// 1-based column in characters; `None` for the CSV directory, which is reported by line.
    pub col: Option<u32>,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The offending source line, for the human rendering only.
    #[serde(skip)]
    pub source_line: Option<String>,
    /// Width of the caret under `source_line`, in characters.
    #[serde(skip)]
    pub width: u32,
}

impl Diagnostic {
    /// A problem with a whole file (missing, unreadable, not UTF-8).
    pub fn file_error(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: None,
            col: None,
            severity: Severity::Error,
            message: message.into(),
            hint: None,
            source_line: None,
            width: 0,
        }
    }

    /// A problem on one line of a line-oriented file (the CSV directory).
    pub fn line_error(file: &Path, line: u64, message: impl Into<String>) -> Self {
        Diagnostic {
            line: Some(u32::try_from(line).unwrap_or(u32::MAX)),
            ..Diagnostic::file_error(file, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The JSON object `ganglion check --json` prints for this diagnostic.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: severity: message`, then the source line with a caret, then the hint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}: {}", self.severity, self.message)?;
        if let (Some(src), Some(line), Some(col)) = (&self.source_line, self.line, self.col) {
            let gutter = line.to_string().len();
            let pad = " ".repeat(col.saturating_sub(1) as usize);
            let carets = "^".repeat(self.width.max(1) as usize);
            write!(f, "\n {line} | {src}\n {:gutter$} | {pad}{carets}", "")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

/// Turns byte offsets in one source text into line and column numbers.
pub struct LineIndex<'s> {
    file: PathBuf,
    text: &'s str,
    /// Byte offset where each line starts; `starts[0] == 0`.
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    pub fn new(file: &Path, text: &'s str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            file: file.to_path_buf(),
            text,
            starts,
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// 1-based line and character column of a byte offset (clamped into the text).
    pub fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let start = self.starts.get(line).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(0, |prefix| prefix.chars().count());
        (to_u32(line + 1), to_u32(col + 1))
    }

    /// 1-based line number of a byte offset.
    pub fn line_of(&self, offset: usize) -> u32 {
        self.position(offset).0
    }

    fn line_text(&self, line: u32) -> Option<&'s str> {
        let i = (line as usize).checked_sub(1)?;
        let start = *self.starts.get(i)?;
        let end = self.starts.get(i + 1).copied().unwrap_or(self.text.len());
        Some(self.text.get(start..end)?.trim_end_matches(['\n', '\r']))
    }

    /// A diagnostic pointing at `span`.
    pub fn diag(
        &self,
        severity: Severity,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, col) = self.position(span.start);
        let source_line = self.line_text(line).map(str::to_owned);
        // The caret covers the span, cut at the end of its first line.
        let width = self
            .text
            .get(span.clone())
            .map_or(1, |s| s.lines().next().map_or(1, |l| l.chars().count()));
        Diagnostic {
            file: self.file.clone(),
            line: Some(line),
            col: Some(col),
            severity,
            message: message.into(),
            hint: None,
            source_line,
            width: to_u32(width),
        }
    }

    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        self.diag(Severity::Error, span, message)
    }

    pub fn warning(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        self.diag(Severity::Warning, span, message)
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        // The distance is at least the difference in length: skip the cost for most of a
        // 28,000-name directory.
        .filter(|c| c.len().abs_diff(word.len()) <= limit)
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// `did you mean `x`?` when a near spelling exists.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    nearest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// Levenshtein distance over characters; the words compared are config keys, a few dozen bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Sorts diagnostics into reading order: the config file's first, then the directory's, each by
/// position (file-level problems first). Stable, so problems at one place keep their order.
pub fn sort(config: &Path, diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| (d.file != config, d.line, d.col));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let idx = LineIndex::new(Path::new("r.toml"), text);
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(6), (2, 1));
        // `=` after the two-byte é is the 4th character of line 2.
        let eq = text.find("= \"").unwrap_or(0);
        assert_eq!(idx.position(eq), (2, 4));
    }

    #[test]
    fn renders_position_caret_and_hint() {
        let text = "[server]\nworkrs = 2\n";
        let idx = LineIndex::new(Path::new("routes.toml"), text);
        let d = idx
            .error(9..15, "unknown key `workrs` in [server]")
            .with_hint("did you mean `workers`?");
        assert_eq!(
            d.to_string(),
            "routes.toml:2:1: error: unknown key `workrs` in [server]\n 2 | workrs = 2\n   | ^^^^^^\n  = hint: did you mean `workers`?"
        );
        assert_eq!(
            d.to_json(),
            r#"{"file":"routes.toml","line":2,"col":1,"severity":"error","message":"unknown key `workrs` in [server]","hint":"did you mean `workers`?"}"#
        );
    }

    #[test]
    fn nearest_spelling() {
        assert_eq!(
            nearest("protocl", ["name", "protocol", "bind"]),
            Some("protocol")
        );
        assert_eq!(nearest("zzzzzz", ["name", "protocol"]), None);
    }
}
