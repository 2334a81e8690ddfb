//! [`Stack`]: the first `N` entries inline, the rest on the heap. The cursor's stacks (open
//! element names, namespace bindings, attribute keys of one tag) are short in every real
//! message, so reading one allocates nothing, while hostile nesting still works.
//!
//! Invariant: `spill` holds entries only while all `N` inline slots are used, so entries run
//! `inline[..len]` then `spill`, bottom to top.

pub(crate) struct Stack<T: Copy, const N: usize> {
    inline: [T; N],
    len: usize,
    spill: Vec<T>,
}

impl<T: Copy, const N: usize> Stack<T, N> {
    /// An empty stack; `fill` only initialises the unused inline slots.
    pub(crate) const fn new(fill: T) -> Self {
        Self {
            inline: [fill; N],
            len: 0,
            spill: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, v: T) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = v;
                self.len += 1;
            }
            None => self.spill.push(v),
        }
    }

    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        if let Some(v) = self.spill.pop() {
            return Some(v);
        }
        self.len = self.len.checked_sub(1)?;
        self.inline.get(self.len).copied()
    }

    #[inline]
    pub(crate) fn last(&self) -> Option<&T> {
        match self.spill.last() {
            Some(v) => Some(v),
            None => self.inline.get(self.len.checked_sub(1)?),
        }
    }

    /// Bottom to top.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.inline
            .get(..self.len)
            .unwrap_or_default()
            .iter()
            .chain(self.spill.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::Stack;

    #[test]
    fn spills_past_the_inline_slots_and_pops_in_order() {
        let mut s = Stack::<usize, 2>::new(0);
        assert_eq!((s.pop(), s.last()), (None, None));
        for v in 1..=5 {
            s.push(v);
            assert_eq!(s.last(), Some(&v));
        }
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert_eq!(s.iter().rev().copied().collect::<Vec<_>>(), [5, 4, 3, 2, 1]);
        for v in (1..=5).rev() {
            assert_eq!(s.pop(), Some(v));
        }
        assert_eq!(s.pop(), None);
        s.push(7);
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), [7]);
    }
}
