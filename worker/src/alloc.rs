//! The worker's memory allocator: [`Recycler`], the system allocator for small blocks, and for
//! large ones (at least [`LARGE`]) a mapping of their own whose memory, once freed, is kept
//! for the next request of the same size.
//!
//! Why: training repeats the same allocations at every step. At width 1310 one Adam step
//! allocates and frees dfdx's 6.9 MB weight gradient, gemm's 2.3 MB packing buffer (twice) and
//! a dozen activations and gradients of 335 KB. glibc serves them from one heap whose holes
//! the smaller requests split, so the larger ones climb above them and the heap grows step after
//! step: the process's peak resident memory on the width-1310 task was 55-77 MiB from run to
//! run (the live data are under 50 MiB), and which one depended on allocations of a few bytes
//! elsewhere. glibc's own remedy, mapping large blocks afresh (`M_MMAP_THRESHOLD`), makes
//! every step fault their pages in again: the dense epoch took 1.3-1.5x as long.
//!
//! Here a large block is never split and never shares pages with another, so the resident
//! memory is the large blocks in use plus the freed ones kept. Reuse takes the most recently
//! freed block of the exact size (in pages), so a step finds the memory the step before used,
//! its pages still mapped. Training calls [`release`] at every level's start and end (another
//! level's network has other sizes), which returns every kept block to the kernel; in between,
//! a kept block goes back once [`STALE_AFTER`] large blocks have been freed after it without
//! it being reused, or when more than [`MAX_KEPT`] bytes or [`SLOTS`] blocks are kept (the
//! oldest first).
//!
//! A large block that grows or shrinks (a vector being filled) is moved by the kernel
//! (`mremap`, Linux), so the sizes it passes through are never kept. Only Unix has the large
//! path (`mmap`); elsewhere every request goes to the system allocator.
//!
//! Keeping freed blocks is for training, whose sizes recur: a process turns it on with
//! [`recycle`] (the `worker` binary at start, `coordinator run` before its workers). Until
//! then a large block is unmapped when freed, so a `coordinator serve` that renders a report
//! or decodes large masks keeps no memory it no longer uses.

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests of at least this many bytes get a mapping of their own. It is glibc's initial
/// mmap threshold: below it, its heap serves requests well.
pub const LARGE: usize = 128 << 10;
/// A kept block goes back to the kernel after this many large blocks are freed after it
/// without it being reused. One epoch at width 1310 frees about 400 large blocks, and every
/// size an epoch uses recurs within one.
pub const STALE_AFTER: u64 = 1024;
/// At most this many bytes are kept (two width-1310 tasks' blocks between their steps take
/// under 30 MiB).
pub const MAX_KEPT: usize = 64 << 20;
/// At most this many blocks are kept.
pub const SLOTS: usize = 128;

/// A recycling allocator with its own shelf of kept blocks; see the module's doc. A program
/// uses the one behind [`Allocator`]; tests make their own.
pub struct Recycler {
    #[cfg(unix)]
    shelf: std::sync::Mutex<large::Shelf>,
    /// Whether freed large blocks are kept (else unmapped at once).
    recycling: std::sync::atomic::AtomicBool,
}

/// The program's allocator, [`RECYCLER`]:
/// `#[global_allocator] static ALLOC: Allocator = Allocator;`.
pub struct Allocator;

/// The recycler behind [`Allocator`].
pub static RECYCLER: Recycler = Recycler::new(false);

/// From now on [`RECYCLER`] keeps freed large blocks for reuse, and glibc's heap, which then
/// holds only small blocks, is told to keep some free memory (see [`TRIM_THRESHOLD`]). For a
/// process that trains; it changes nothing where [`Allocator`] is not the program's allocator.
pub fn recycle() {
    configure_glibc();
    RECYCLER.set_recycling(true);
}

/// Returns every block [`RECYCLER`] keeps to the kernel (blocks in use are not affected): for
/// a change of sizes, such as a new IMP level. Nothing happens where [`Allocator`] is not the
/// program's allocator, since nothing is kept then.
pub fn release() {
    RECYCLER.release();
}

#[cfg(unix)]
mod large {
    //! The large blocks: mappings, and the ones kept for reuse.

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, MutexGuard};

    use super::{MAX_KEPT, SLOTS, STALE_AFTER};

    /// A freed block kept for reuse.
    #[derive(Clone, Copy)]
    struct Kept {
        ptr: usize,
        bytes: usize,
        /// The value of [`Kept::clock`] when it was freed.
        freed_at: u64,
    }

    pub struct Shelf {
        slots: [Kept; SLOTS],
        len: usize,
        /// Bytes kept.
        bytes: usize,
        /// Large blocks freed so far.
        clock: u64,
    }

    const EMPTY: Kept = Kept {
        ptr: 0,
        bytes: 0,
        freed_at: 0,
    };

    /// An empty shelf. It never allocates: a fixed array behind a lock.
    pub const fn empty() -> Mutex<Shelf> {
        Mutex::new(Shelf {
            slots: [EMPTY; SLOTS],
            len: 0,
            bytes: 0,
            clock: 0,
        })
    }

    fn lock(shelf: &Mutex<Shelf>) -> MutexGuard<'_, Shelf> {
        // Nothing that holds the lock can panic; a poisoned lock is still consistent.
        shelf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The page size (read once).
    pub fn page() -> usize {
        static PAGE: AtomicUsize = AtomicUsize::new(0);
        match PAGE.load(Ordering::Relaxed) {
            0 => {
                // SAFETY: sysconf has no preconditions.
                let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
                let page = usize::try_from(page).unwrap_or(4096).max(4096);
                PAGE.store(page, Ordering::Relaxed);
                page
            }
            page => page,
        }
    }

    /// `size` rounded up to whole pages (`None` on overflow).
    pub fn pages(size: usize) -> Option<usize> {
        let page = page();
        size.checked_add(page - 1).map(|s| s / page * page)
    }

    /// A kept block of exactly `bytes`, the most recently freed one.
    pub fn reuse(shelf: &Mutex<Shelf>, bytes: usize) -> Option<*mut u8> {
        let mut shelf = lock(shelf);
        let len = shelf.len;
        let best = shelf.slots[..len]
            .iter()
            .enumerate()
            .filter(|(_, k)| k.bytes == bytes)
            .max_by_key(|(_, k)| k.freed_at)
            .map(|(i, _)| i)?;
        let kept = shelf.slots[best];
        shelf.slots[best] = shelf.slots[len - 1];
        shelf.len -= 1;
        shelf.bytes -= bytes;
        Some(kept.ptr as *mut u8)
    }

    /// A fresh mapping of `bytes` (zeroed), or null.
    pub fn map(bytes: usize) -> *mut u8 {
        // SAFETY: an anonymous private mapping with no address hint touches nothing else.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            ptr.cast()
        }
    }

    /// # Safety
    /// `ptr` is a mapping of `bytes` made by [`map`] and no longer used.
    pub unsafe fn unmap(ptr: *mut u8, bytes: usize) {
        // SAFETY: the caller's contract. A failure would leave the mapping in place: a leak,
        // not an error the program could act on.
        unsafe { libc::munmap(ptr.cast(), bytes) };
    }

    /// Keeps the freed block `ptr` of `bytes`, and returns to the kernel what is now stale or
    /// over the limits. A block over [`MAX_KEPT`] by itself goes back at once and leaves the
    /// shelf as it is.
    ///
    /// # Safety
    /// `ptr` is a mapping of `bytes` made by [`map`] and no longer used.
    pub unsafe fn keep(shelf: &Mutex<Shelf>, ptr: *mut u8, bytes: usize) {
        if bytes > MAX_KEPT {
            // SAFETY: the caller's contract.
            unsafe { unmap(ptr, bytes) };
            return;
        }
        let mut evicted = [EMPTY; SLOTS];
        let mut n = 0;
        {
            let mut shelf = lock(shelf);
            shelf.clock += 1;
            let clock = shelf.clock;
            // Stale blocks go first, then the oldest while a limit is exceeded.
            let mut i = 0;
            while i < shelf.len {
                if clock - shelf.slots[i].freed_at > STALE_AFTER {
                    evicted[n] = take(&mut shelf, i);
                    n += 1;
                } else {
                    i += 1;
                }
            }
            while shelf.len > 0 && (shelf.len == SLOTS || shelf.bytes + bytes > MAX_KEPT) {
                let len = shelf.len;
                let oldest = (0..len)
                    .min_by_key(|&i| shelf.slots[i].freed_at)
                    .expect("the shelf is not empty");
                evicted[n] = take(&mut shelf, oldest);
                n += 1;
            }
            let len = shelf.len;
            shelf.slots[len] = Kept {
                ptr: ptr as usize,
                bytes,
                freed_at: clock,
            };
            shelf.len += 1;
            shelf.bytes += bytes;
        }
        unmap_all(&evicted[..n]);
    }

    /// Returns blocks taken off the shelf to the kernel (outside its lock).
    fn unmap_all(blocks: &[Kept]) {
        for k in blocks {
            // SAFETY: a block off the shelf is a mapping of `bytes` that nothing uses.
            unsafe { unmap(k.ptr as *mut u8, k.bytes) };
        }
    }

    fn take(shelf: &mut Shelf, i: usize) -> Kept {
        let kept = shelf.slots[i];
        let len = shelf.len;
        shelf.slots[i] = shelf.slots[len - 1];
        shelf.len -= 1;
        shelf.bytes -= kept.bytes;
        kept
    }

    /// The mapping `ptr` of `old` bytes resized to `new` bytes (moved if need be), or null
    /// (the old mapping then stays as it was).
    ///
    /// # Safety
    /// `ptr` is a mapping of `old` bytes made by [`map`] or by this function.
    #[cfg(target_os = "linux")]
    pub unsafe fn remap(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: the caller's contract; the kernel moves the pages, it copies nothing.
        let moved = unsafe { libc::mremap(ptr.cast(), old, new, libc::MREMAP_MAYMOVE) };
        if moved == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            moved.cast()
        }
    }

    /// Blocks and bytes kept now (for tests and diagnostics).
    pub fn kept(shelf: &Mutex<Shelf>) -> (usize, usize) {
        let shelf = lock(shelf);
        (shelf.len, shelf.bytes)
    }

    /// Returns every kept block to the kernel.
    pub fn release(shelf: &Mutex<Shelf>) {
        let mut evicted = [EMPTY; SLOTS];
        let n;
        {
            let mut shelf = lock(shelf);
            n = shelf.len;
            evicted[..n].copy_from_slice(&shelf.slots[..n]);
            shelf.len = 0;
            shelf.bytes = 0;
        }
        unmap_all(&evicted[..n]);
    }
}

impl Recycler {
    /// A recycler with nothing kept; `recycling` says whether it keeps freed large blocks.
    pub const fn new(recycling: bool) -> Recycler {
        Recycler {
            #[cfg(unix)]
            shelf: large::empty(),
            recycling: std::sync::atomic::AtomicBool::new(recycling),
        }
    }

    /// Turns keeping freed large blocks on or off (off: the kept ones stay until
    /// [`Recycler::release`] or reuse).
    pub fn set_recycling(&self, on: bool) {
        self.recycling
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether `layout` takes the large path, and its size in whole pages if so.
    #[cfg(unix)]
    fn large(layout: Layout) -> Option<usize> {
        if layout.size() < LARGE || layout.align() > large::page() {
            return None;
        }
        large::pages(layout.size())
    }

    #[cfg(not(unix))]
    fn large(_: Layout) -> Option<usize> {
        None
    }

    /// Blocks and bytes kept for reuse now.
    pub fn kept(&self) -> (usize, usize) {
        #[cfg(unix)]
        return large::kept(&self.shelf);
        #[cfg(not(unix))]
        (0, 0)
    }

    /// Returns every kept block to the kernel (blocks in use are not affected).
    pub fn release(&self) {
        #[cfg(unix)]
        large::release(&self.shelf);
    }
}

// SAFETY: small requests are the system allocator's. A large request gets a mapping of at
// least its size in whole pages (page-aligned, and its alignment is at most a page), either
// fresh or kept after its previous owner freed it; it is unmapped or kept only when freed.
unsafe impl GlobalAlloc for Recycler {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Self::large(layout) {
            #[cfg(unix)]
            Some(bytes) => large::reuse(&self.shelf, bytes).unwrap_or_else(|| large::map(bytes)),
            // SAFETY: the caller's contract, passed on.
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match Self::large(layout) {
            #[cfg(unix)]
            Some(bytes) => match large::reuse(&self.shelf, bytes) {
                Some(ptr) => {
                    // SAFETY: a kept block has `bytes >= layout.size()` bytes.
                    unsafe { ptr.write_bytes(0, layout.size()) };
                    ptr
                }
                // A fresh mapping is zero.
                None => large::map(bytes),
            },
            // SAFETY: the caller's contract, passed on.
            _ => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match Self::large(layout) {
            // SAFETY: `ptr` was allocated with `layout`, so by the large path: a mapping of
            // `bytes`, which the caller no longer uses.
            #[cfg(unix)]
            Some(bytes) => unsafe {
                if self.recycling.load(std::sync::atomic::Ordering::Relaxed) {
                    large::keep(&self.shelf, ptr, bytes)
                } else {
                    large::unmap(ptr, bytes)
                }
            },
            // SAFETY: the caller's contract, passed on.
            _ => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` is valid with `layout`'s alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Self::large(layout), Self::large(new_layout)) {
            // SAFETY: the caller's contract, passed on.
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            (Some(old), Some(new)) if old == new => ptr,
            // A growing or shrinking large vector: its pages move, and no block of a size
            // that will not recur is left kept.
            #[cfg(target_os = "linux")]
            // SAFETY: `ptr` is a large block of `old` bytes.
            (Some(old), Some(new)) => unsafe { large::remap(ptr, old, new) },
            _ => {
                // SAFETY: `new_layout` has a non-zero size (the caller's contract).
                let fresh = unsafe { self.alloc(new_layout) };
                if !fresh.is_null() {
                    // SAFETY: both blocks hold at least the smaller size, and are distinct.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                fresh
            }
        }
    }
}

/// glibc returns the free memory at the top of its heap to the kernel once it exceeds 128 KiB
/// (`M_TRIM_THRESHOLD`), unless it has seen a large block freed, which raises that threshold.
/// With the large blocks here it never does: at width 410, whose activations (105 KB) are
/// small blocks, a training thread's heap was trimmed at every step and its pages faulted in
/// again (about 480 `madvise` calls in 15 epochs, the epoch 7% slower). Up to this much stays.
pub const TRIM_THRESHOLD: usize = 8 << 20;

/// Sets glibc's trim threshold (no other C library has it).
fn configure_glibc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes glibc's own lock and allocates nothing of ours.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as i32);
    }
}

// SAFETY: every call goes to the same recycler.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { RECYCLER.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { RECYCLER.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { RECYCLER.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { RECYCLER.realloc(ptr, layout, new_size) }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 64).unwrap()
    }

    #[test]
    fn a_freed_large_block_serves_the_next_request_of_its_size() {
        let a = Recycler::new(true);
        unsafe {
            let p = a.alloc(layout(335_360));
            assert!(!p.is_null());
            assert_eq!(p as usize % 64, 0);
            p.write_bytes(7, 335_360);
            a.dealloc(p, layout(335_360));
            assert_eq!(a.kept(), (1, large::pages(335_360).unwrap()));
            // Another size in the same number of pages takes it too; the contents stay.
            let q = a.alloc(layout(335_000));
            assert_eq!(q, p);
            assert_eq!(*q.add(334_999), 7);
            assert_eq!(a.kept(), (0, 0));
            a.dealloc(q, layout(335_000));
            // A zeroed request over a kept block gets zeros.
            let z = a.alloc_zeroed(layout(335_360));
            assert_eq!(z, p);
            assert!(std::slice::from_raw_parts(z, 335_360)
                .iter()
                .all(|&b| b == 0));
            a.dealloc(z, layout(335_360));
        }
    }

    #[test]
    fn without_recycling_a_freed_large_block_goes_back_at_once() {
        let a = Recycler::new(false);
        unsafe {
            let p = a.alloc(layout(LARGE));
            p.write_bytes(3, LARGE);
            a.dealloc(p, layout(LARGE));
            assert_eq!(a.kept(), (0, 0));
            a.set_recycling(true);
            let q = a.alloc(layout(LARGE));
            a.dealloc(q, layout(LARGE));
            assert_eq!(a.kept(), (1, LARGE));
            a.release();
            assert_eq!(a.kept(), (0, 0));
        }
    }

    #[test]
    fn small_blocks_and_large_alignments_go_to_the_system_allocator() {
        let a = Recycler::new(true);
        unsafe {
            let p = a.alloc(layout(LARGE - 1));
            assert!(!p.is_null());
            a.dealloc(p, layout(LARGE - 1));
            let big_align = Layout::from_size_align(LARGE, 1 << 16).unwrap();
            let q = a.alloc(big_align);
            assert_eq!(q as usize % (1 << 16), 0);
            a.dealloc(q, big_align);
        }
        assert_eq!(a.kept(), (0, 0));
    }

    #[test]
    fn sizes_no_longer_asked_for_go_back_to_the_kernel() {
        let a = Recycler::new(true);
        unsafe {
            let old = a.alloc(layout(4 * LARGE));
            a.dealloc(old, layout(4 * LARGE));
            // A level of another size: its block freed and reused, STALE_AFTER frees in all.
            let mut p = a.alloc(layout(LARGE));
            for _ in 0..STALE_AFTER {
                a.dealloc(p, layout(LARGE));
                p = a.alloc(layout(LARGE));
            }
            // The old block is still kept, the recurring one in use; one more free and the
            // old one has gone back to the kernel.
            assert_eq!(a.kept(), (1, large::pages(4 * LARGE).unwrap()));
            a.dealloc(p, layout(LARGE));
            assert_eq!(a.kept(), (1, large::pages(LARGE).unwrap()));
            // Same pages: a reallocation in place.
            let q = a.alloc(layout(LARGE + 100));
            assert_eq!(a.realloc(q, layout(LARGE + 100), LARGE + 4000), q);
            a.dealloc(q, layout(LARGE + 4000));
        }
    }

    #[test]
    fn what_is_kept_stays_within_the_limits() {
        let a = Recycler::new(true);
        let size = 8 << 20;
        unsafe {
            let blocks: Vec<*mut u8> = (0..12).map(|_| a.alloc(layout(size))).collect();
            for &p in &blocks {
                a.dealloc(p, layout(size));
            }
            let (n, bytes) = a.kept();
            assert_eq!(bytes, n * large::pages(size).unwrap());
            assert!(bytes <= MAX_KEPT, "{bytes} bytes kept");
            // The newest were kept.
            assert_eq!(n, MAX_KEPT / size);
            let p = a.alloc(layout(size));
            assert_eq!(p, blocks[11]);
            a.dealloc(p, layout(size));

            let small = 200 << 10;
            let blocks: Vec<*mut u8> = (0..SLOTS + 5).map(|_| a.alloc(layout(small))).collect();
            for &p in &blocks {
                a.dealloc(p, layout(small));
            }
            assert!(a.kept().0 <= SLOTS);
        }
    }

    #[test]
    fn a_block_over_the_limit_goes_back_and_leaves_a_full_shelf_alone() {
        let a = Recycler::new(true);
        let small = LARGE;
        unsafe {
            let blocks: Vec<*mut u8> = (0..SLOTS).map(|_| a.alloc(layout(small))).collect();
            for &p in &blocks {
                a.dealloc(p, layout(small));
            }
            assert_eq!(a.kept(), (SLOTS, SLOTS * large::pages(small).unwrap()));
            let huge = MAX_KEPT + 1;
            let p = a.alloc(layout(huge));
            assert!(!p.is_null());
            a.dealloc(p, layout(huge));
            assert_eq!(a.kept(), (SLOTS, SLOTS * large::pages(small).unwrap()));
        }
    }

    #[test]
    fn realloc_keeps_the_contents_across_both_paths() {
        let a = Recycler::new(true);
        unsafe {
            // Small to large, large to larger, large to small.
            let mut size = 1000;
            let mut p = a.alloc(layout(size));
            for i in 0..size {
                *p.add(i) = (i % 251) as u8;
            }
            for new in [LARGE + 10, 3 * LARGE, 3 * LARGE + 1, 100] {
                p = a.realloc(p, layout(size), new);
                assert!(!p.is_null());
                for i in 0..size.min(new).min(1000) {
                    assert_eq!(*p.add(i), (i % 251) as u8, "byte {i} after {size} -> {new}");
                }
                size = new;
            }
            a.dealloc(p, layout(size));
        }
    }

    #[test]
    fn many_threads_allocate_and_free_at_once() {
        let a = Recycler::new(true);
        std::thread::scope(|s| {
            for t in 0..4usize {
                let a = &a;
                s.spawn(move || {
                    for i in 0..200 {
                        let size = LARGE + (t * 7 + i % 5) * 4096;
                        unsafe {
                            let p = a.alloc(layout(size));
                            p.write_bytes(t as u8, size);
                            assert_eq!(*p.add(size - 1), t as u8);
                            a.dealloc(p, layout(size));
                        }
                    }
                });
            }
        });
        assert!(a.kept().1 <= MAX_KEPT);
    }
}
