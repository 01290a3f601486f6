//! Sorting and binary search (`core`'s `sort_unstable`, `binary_search`): per slice, 48
//! generated words are sorted, then 16 of them (and 16 absent keys) are searched.
//!
//! Checks: every sorted array was in order and a permutation of its input (sum and xor
//! kept), every present key was found at a slot holding it, no absent key was found.

use crate::{fold, Failure, Workload, XorShift32};

const N: usize = 32;

/// Sort and search over generated arrays.
pub struct SortSearch {
    rng: XorShift32,
    data: [u32; N],
    digest: u32,
    errors: u32,
}

impl SortSearch {
    /// A fresh workload.
    pub fn new() -> Self {
        Self { rng: XorShift32(0x0bad_5eed), data: [0; N], digest: 0, errors: 0 }
    }
}

impl Default for SortSearch {
    fn default() -> Self {
        Self::new()
    }
}

impl Workload for SortSearch {
    const NAME: &'static str = "sort-search";

    fn step(&mut self) {
        let (mut sum, mut xor) = (0u32, 0u32);
        for v in self.data.iter_mut() {
            // Even values only: odd keys are surely absent.
            *v = self.rng.next_u32() & !1;
            sum = sum.wrapping_add(*v);
            xor ^= *v;
        }
        let keys: [u32; 8] = core::array::from_fn(|i| self.data[i * 4]);
        self.data.sort_unstable();
        let (s2, x2) = self.data.iter().fold((0u32, 0u32), |(s, x), v| (s.wrapping_add(*v), x ^ v));
        if !self.data.is_sorted() || s2 != sum || x2 != xor {
            self.errors += 1;
        }
        for k in keys {
            match self.data.binary_search(&k) {
                Ok(i) if self.data[i] == k => self.digest = fold(self.digest, i as u32),
                _ => self.errors += 1,
            }
            if self.data.binary_search(&(k | 1)).is_ok() {
                self.errors += 1;
            }
        }
        self.digest = fold(self.digest, self.data[N / 2]);
    }

    fn digest(&self) -> u32 {
        self.digest
    }

    fn check(&self) -> Result<(), Failure> {
        if self.errors != 0 {
            return Err(Failure("an array was not sorted, or a search went wrong"));
        }
        Ok(())
    }
}
