//! Slicing bytes by a range this crate found in those very bytes.
//!
//! A frame's place from the MLLP decoder, a record's from the log's scan, a span a record
//! stored and its checksum vouched for: each always fits the bytes it was found in. Were one
//! ever not to, that is a bug here, not bad input, so it must not pass silently as empty bytes:
//! a debug build (every test) stops at once; a release build, which must never panic on what a
//! sender or a disk handed it, yields no bytes and goes on.
use std::slice::SliceIndex;

/// `bytes[range]`, for a `range` found in `bytes` (see the module's comment).
#[inline]
#[track_caller]
pub fn within<R>(bytes: &[u8], range: R) -> &[u8]
where
    R: SliceIndex<[u8], Output = [u8]> + std::fmt::Debug + Clone,
{
    match bytes.get(range.clone()) {
        Some(part) => part,
        None => {
            debug_assert!(
                false,
                "{range:?} is outside the {} bytes it was found in",
                bytes.len()
            );
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn a_range_that_fits_is_the_slice() {
        assert_eq!(within(b"abcdef", 1..3), b"bc");
        assert_eq!(within(b"abcdef", 6..), b"");
    }

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "outside the 6 bytes"))]
    fn a_range_that_does_not_fit_is_a_bug_said_aloud_in_debug_builds() {
        assert_eq!(within(b"abcdef", 4..9), b"");
    }
}
