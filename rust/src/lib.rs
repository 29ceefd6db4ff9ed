//! detheap: a deterministic memory allocator, from Rust.
//!
//! Every address (as an offset from a heap's base), every handle and every
//! statistic is a pure function of the calls made on the heap.  This crate
//! links the C library (see build.rs) and offers three layers:
//!
//! * [`ffi`]: the C API as declared in `detheap.h`;
//! * [`Heap`]: a private heap through the handle API, with the behaviour of
//!   the original Rust design's `BinnedAllocator`;
//! * [`DetHeap`]: a thread-safe `#[global_allocator]`.
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: detheap::DetHeap = detheap::DetHeap::new();
//! ```
pub mod ffi;
mod global;
mod heap;

pub use global::DetHeap;
pub use heap::{class_size, size_class, Handle, Heap, OpenMode, Snapshot};

/// The version of the linked C library, as `ffi::DH_VERSION` (0x00MMmmpp).
pub fn version() -> u32 {
    unsafe { ffi::dh_version() }
}
