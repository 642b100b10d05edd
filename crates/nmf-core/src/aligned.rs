//! Zero-initialized `f32` buffers that start on a cache line, so that 512-bit loads of the
//! kernels never straddle two lines (the allocator only guarantees 16 bytes).

use std::ops::{Deref, DerefMut};

/// Cache line size, bytes.
const LINE: usize = 64;
const PER_LINE: usize = LINE / std::mem::size_of::<f32>();

/// A fixed-length `f32` buffer whose first element is 64-byte aligned. Derefs to a slice.
#[derive(Debug, Default)]
pub struct AlignedBuf {
    storage: Vec<f32>,
    offset: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` zeros. Allocates.
    pub fn zeros(len: usize) -> Self {
        let storage = vec![0.0f32; len + PER_LINE];
        let misalign = (storage.as_ptr() as usize % LINE) / std::mem::size_of::<f32>();
        let offset = (PER_LINE - misalign) % PER_LINE;
        Self {
            storage,
            offset,
            len,
        }
    }

    /// A copy of `values`. Allocates.
    pub fn from_slice(values: &[f32]) -> Self {
        let mut buf = Self::zeros(values.len());
        buf.copy_from_slice(values);
        buf
    }
}

impl Clone for AlignedBuf {
    /// A copy with its own alignment (the storage moves, so the offset is recomputed).
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl Deref for AlignedBuf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.storage[self.offset..self.offset + self.len]
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.storage[self.offset..self.offset + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_a_cache_line() {
        for len in [0, 1, 15, 16, 1025, 65_600] {
            let b = AlignedBuf::zeros(len);
            assert_eq!(b.len(), len);
            assert_eq!(b.as_ptr() as usize % LINE, 0);
            assert!(b.iter().all(|&x| x == 0.0));
        }
    }
}
