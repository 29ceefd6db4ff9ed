//! `DetHeap`: detheap as Rust's `#[global_allocator]`.
//!
//! Two sources of memory, chosen when the static is declared:
//!
//! * `DetHeap::new()`: the library's process heap (`dh_malloc` & co).  One
//!   heap per thread, placed by the thread's place in the creation tree, so
//!   each thread's addresses are deterministic without any lock here; the
//!   base comes from `DETHEAP_BASE` (docs/OPTIONS.md).
//! * `DetHeap::with_base(b)`: one private heap at the fixed address `b`,
//!   created at the first allocation and shared by all threads behind a
//!   spin lock.  Absolute addresses repeat across runs of a program whose
//!   allocation order is deterministic (single-threaded, or threads that
//!   take turns).
//!
//! Moving a program from one to the other is the one line that declares
//! the static.  Each source is a module below with the same four functions,
//! so `GlobalAlloc` only dispatches.
//!
//! The lock cannot be a `Mutex`: a global allocator must not allocate, and
//! must not depend on anything that might.  The C calls never call back
//! into Rust, so the lock is never taken twice by one thread.
use crate::ffi;
use core::alloc::{GlobalAlloc, Layout};
use std::os::raw::c_void; // core::ffi's types need rustc 1.64
use core::hint::spin_loop;
use core::ptr::{self, null_mut};
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// Every block is at least this aligned (detheap.h, dh_heap_malloc).
const MIN_ALIGN: usize = 16;

/// Where a `DetHeap` takes its memory from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Process,
    Private { base: usize },
}

/// A deterministic global allocator.  Declare it as
/// `#[global_allocator] static A: DetHeap = DetHeap::new();`.
pub struct DetHeap {
    source: Source,
    /// The private heap, created at the first allocation (Private only).
    heap: AtomicPtr<ffi::dh_heap_t>,
    /// Guards `heap`'s creation and every call on it (Private only).
    locked: AtomicBool,
}

impl DetHeap {
    /// The library's process heap: per-thread heaps, no lock.
    pub const fn new() -> DetHeap {
        DetHeap::from_source(Source::Process)
    }

    /// One heap at the fixed address `base` (a multiple of 64 GiB, the
    /// default reserve), shared by all threads behind a spin lock.  If the
    /// range is taken when the heap is first needed, the heap is placed
    /// anywhere instead: check `base()` when absolute addresses matter.
    pub const fn with_base(base: usize) -> DetHeap {
        DetHeap::from_source(Source::Private { base })
    }

    const fn from_source(source: Source) -> DetHeap {
        DetHeap { source, heap: AtomicPtr::new(null_mut()), locked: AtomicBool::new(false) }
    }

    /// The base of the private heap once it exists; `None` for the process
    /// heap or before the first allocation.
    pub fn base(&self) -> Option<usize> {
        let h = self.heap.load(Ordering::Acquire);
        (!h.is_null()).then(|| unsafe { ffi::dh_heap_base(h) })
    }

    /// The statistics of the heap(s) behind this allocator.
    pub fn stats(&self) -> Option<ffi::dh_stats_t> {
        let mut s = ffi::dh_stats_t::default();
        let size = core::mem::size_of::<ffi::dh_stats_t>();
        let ok = match self.source {
            Source::Process => unsafe { ffi::dh_process_stats(&mut s, size) },
            Source::Private { .. } => {
                let guard = self.lock();
                let h = guard.heap();
                !h.is_null() && unsafe { ffi::dh_heap_stats(h, &mut s, size) }
            }
        };
        ok.then_some(s)
    }

    fn lock(&self) -> Guard<'_> {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.locked.load(Ordering::Relaxed) {
                spin_loop();
            }
        }
        Guard { owner: self }
    }
}

impl Default for DetHeap {
    fn default() -> DetHeap {
        DetHeap::new()
    }
}

/// Holds the spin lock of a private `DetHeap`.
struct Guard<'a> {
    owner: &'a DetHeap,
}

impl Guard<'_> {
    /// The private heap, created on first use; null if it cannot be.
    fn heap(&self) -> *mut ffi::dh_heap_t {
        self.owner.heap.load(Ordering::Relaxed)
    }

    fn heap_or_create(&self) -> *mut ffi::dh_heap_t {
        let h = self.heap();
        if !h.is_null() {
            return h;
        }
        let base = match self.owner.source {
            Source::Private { base } => base,
            Source::Process => return null_mut(),
        };
        let h = match create_heap(base) {
            h if h.is_null() && base != 0 => create_heap(0),
            h => h,
        };
        self.owner.heap.store(h, Ordering::Release);
        h
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.owner.locked.store(false, Ordering::Release);
    }
}

fn create_heap(base: usize) -> *mut ffi::dh_heap_t {
    let mut cfg = core::mem::MaybeUninit::<ffi::dh_config_t>::uninit();
    unsafe {
        ffi::dh_config_init(cfg.as_mut_ptr());
        let mut cfg = cfg.assume_init();
        cfg.base = base;
        ffi::dh_heap_create(&cfg)
    }
}

/// The process heap: the library's thread-safe default-heap API.
mod process {
    use super::*;

    pub unsafe fn alloc(layout: Layout, zeroed: bool) -> *mut u8 {
        let p = if layout.align() <= MIN_ALIGN {
            if zeroed { ffi::dh_calloc(1, layout.size()) } else { ffi::dh_malloc(layout.size()) }
        } else {
            let p = ffi::dh_aligned_alloc(layout.align(), layout.size());
            if zeroed && !p.is_null() {
                ptr::write_bytes(p.cast::<u8>(), 0, layout.size());
            }
            p
        };
        p.cast()
    }
    pub unsafe fn free(p: *mut u8) {
        ffi::dh_free(p.cast())
    }
    pub unsafe fn realloc(p: *mut u8, new_size: usize) -> *mut u8 {
        ffi::dh_realloc(p.cast(), new_size).cast()
    }
}

/// A private heap: the same calls, on one heap, under the caller's lock.
mod private {
    use super::*;

    pub unsafe fn alloc(h: *mut ffi::dh_heap_t, layout: Layout, zeroed: bool) -> *mut u8 {
        if h.is_null() {
            return null_mut();
        }
        let p: *mut c_void = if layout.align() <= MIN_ALIGN {
            if zeroed { ffi::dh_heap_calloc(h, 1, layout.size()) } else { ffi::dh_heap_malloc(h, layout.size()) }
        } else {
            let p = ffi::dh_heap_aligned_alloc(h, layout.align(), layout.size());
            if zeroed && !p.is_null() {
                ptr::write_bytes(p.cast::<u8>(), 0, layout.size());
            }
            p
        };
        p.cast()
    }
    pub unsafe fn free(h: *mut ffi::dh_heap_t, p: *mut u8) {
        ffi::dh_heap_free(h, p.cast())
    }
    pub unsafe fn realloc(h: *mut ffi::dh_heap_t, p: *mut u8, new_size: usize) -> *mut u8 {
        ffi::dh_heap_realloc(h, p.cast(), new_size).cast()
    }
}

impl DetHeap {
    unsafe fn allocate(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        match self.source {
            Source::Process => process::alloc(layout, zeroed),
            Source::Private { .. } => {
                let guard = self.lock();
                private::alloc(guard.heap_or_create(), layout, zeroed)
            }
        }
    }
}

unsafe impl GlobalAlloc for DetHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocate(layout, false)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.allocate(layout, true)
    }

    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        match self.source {
            Source::Process => process::free(p),
            Source::Private { .. } => {
                let guard = self.lock();
                private::free(guard.heap(), p)
            }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The C realloc keeps only the 16-byte guarantee; stricter
        // alignments move by hand.
        if layout.align() > MIN_ALIGN {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let q = self.alloc(new_layout);
            if !q.is_null() {
                ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
            return q;
        }
        match self.source {
            Source::Process => process::realloc(p, new_size),
            Source::Private { .. } => {
                let guard = self.lock();
                private::realloc(guard.heap(), p, new_size)
            }
        }
    }
}
