//! Buffers reused from one training step to the next: the activations, gradients and value
//! copies that the sparse layers keep outside dfdx (see [`super::sparse`]).
//!
//! A step asks for the same few sizes every time, so after the first step nothing is
//! allocated, zeroed or returned to the operating system: a buffer comes back with whatever
//! values it last held, and the kernels that fill it overwrite every entry.
//!
//! A buffer [`Pool::lend`]s is a [`Lent`], which goes back to the pool when it is dropped: the
//! code that uses one cannot forget to give it back, nor give it back twice.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

/// A pool of `f32` buffers, shared by a network's sparse layers and their backward passes.
#[derive(Debug, Default)]
pub struct Pool {
    free: Mutex<Vec<Vec<f32>>>,
}

impl Pool {
    /// A buffer of exactly `len` values whose contents are unspecified (stale values of an
    /// earlier use, or zeros where it had to grow). A free buffer of exactly that length is
    /// taken first (a step asks for the same lengths every time, and lengthening a buffer
    /// writes zeros over the new part), else the smallest that holds `len` values without
    /// growing, else the largest.
    pub fn take(&self, len: usize) -> Vec<f32> {
        let mut buf = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            let exact = (0..free.len()).find(|&i| free[i].len() == len);
            let fits = || {
                (0..free.len())
                    .filter(|&i| free[i].capacity() >= len)
                    .min_by_key(|&i| free[i].capacity())
            };
            let largest = || (0..free.len()).max_by_key(|&i| free[i].capacity());
            match exact.or_else(fits).or_else(largest) {
                Some(i) => free.swap_remove(i),
                None => Vec::new(),
            }
        };
        if buf.len() >= len {
            buf.truncate(len);
        } else {
            buf.resize(len, 0.0);
        }
        buf
    }

    /// Returns a buffer for later use.
    pub fn give(&self, buf: Vec<f32>) {
        if buf.capacity() > 0 {
            self.free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(buf);
        }
    }

    /// Returns every buffer of `bufs`.
    pub fn give_all(&self, bufs: impl IntoIterator<Item = Vec<f32>>) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.extend(bufs.into_iter().filter(|b| b.capacity() > 0));
    }

    /// [`Pool::take`] as a [`Lent`]: the buffer goes back to this pool when dropped.
    pub fn lend(self: &Arc<Self>, len: usize) -> Lent {
        Lent {
            buf: self.take(len),
            pool: Arc::clone(self),
        }
    }

    /// Values held by the free buffers (their capacity), for memory accounting.
    pub fn held(&self) -> usize {
        let free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.iter().map(Vec::capacity).sum()
    }
}

/// A buffer of a [`Pool`] (see [`Pool::lend`]), given back to it when dropped. Its length
/// is fixed; its contents are unspecified until written.
#[derive(Debug)]
pub struct Lent {
    buf: Vec<f32>,
    pool: Arc<Pool>,
}

impl Deref for Lent {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.buf
    }
}

impl DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_reuses_the_buffers_of_the_last_one() {
        let pool = Pool::default();
        let a = pool.take(100);
        let b = pool.take(10);
        assert_eq!((a.len(), b.len()), (100, 10));
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        pool.give_all([a, b]);
        // The same sizes in the same order get the same memory back.
        let a = pool.take(100);
        let b = pool.take(10);
        assert_eq!((a.as_ptr(), b.as_ptr()), (pa, pb));
        pool.give(b);
        // A smaller request takes the smallest buffer that holds it.
        let c = pool.take(5);
        assert_eq!((c.as_ptr(), c.len()), (pb, 5));
        pool.give(c);
        pool.give(a);
        assert!(pool.held() >= 110);
    }

    #[test]
    fn a_buffer_has_the_asked_length_whatever_it_held() {
        let pool = Pool::default();
        pool.give(vec![7.0; 50]);
        assert_eq!(pool.take(40).len(), 40);
        // Growing past every free buffer keeps the old values and zero-fills the rest.
        pool.give(vec![3.0; 2]);
        let grown = pool.take(4);
        assert_eq!(grown.len(), 4);
        assert_eq!(&grown[2..], &[0.0, 0.0]);
    }

    #[test]
    fn a_lent_buffer_goes_back_when_dropped() {
        let pool = Arc::new(Pool::default());
        let lent = pool.lend(100);
        assert_eq!((lent.len(), pool.held()), (100, 0));
        let at = lent.as_ptr();
        drop(lent);
        assert!(pool.held() >= 100);
        // The next loan of that size is the same memory.
        assert_eq!(pool.lend(100).as_ptr(), at);
    }
}
