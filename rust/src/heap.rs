//! `Heap`: a private detheap heap driven through its handle API, with the
//! behaviour of the original design's `BinnedAllocator`: `alloc` returns a
//! handle, handles of freed blocks come back LIFO within a size class, a
//! double or stale free is a harmless no-op, and storage never shrinks.
//!
//! Borrowing does the safety work: `get` lends the block's bytes for as
//! long as the heap is borrowed, and every call that could free or reuse a
//! block takes `&mut self`, so a slice can never outlive its block.
use crate::ffi;
use std::os::raw::c_int;
use core::ptr::NonNull;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A block handle.  Equal handles name the same block; a handle whose block
/// was freed and handed out again names the new allocation, as block
/// indices did in the original design.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(ffi::dh_handle_t);

impl Handle {
    /// The raw id (the block's offset from the heap base / 16, never 0).
    pub fn id(self) -> u64 {
        self.0.id
    }
    /// The C handle, for the `ffi` functions.
    pub fn raw(self) -> ffi::dh_handle_t {
        self.0
    }
}

/// The size class serving a request of `n` bytes (0..13), or `None` above
/// 64 KiB, where large blocks take over.
pub fn size_class(n: usize) -> Option<usize> {
    let c = unsafe { ffi::dh_size_class(n) };
    usize::try_from(c).ok()
}

/// The size of class `c` in bytes, or 0 when there is no such class.
pub fn class_size(c: usize) -> usize {
    match c_int::try_from(c) {
        Ok(c) => unsafe { ffi::dh_class_size(c) },
        Err(_) => 0,
    }
}

/// A private heap.  Used by one thread at a time (it is `Send`, not
/// `Sync`); dropping it returns its whole address range to the OS.
pub struct Heap {
    raw: NonNull<ffi::dh_heap_t>,
}

// The C heap has no thread affinity; it only must not be used by two
// threads at once, which `&mut self` and the missing `Sync` ensure.
unsafe impl Send for Heap {}

impl Heap {
    /// A heap with the default settings, placed wherever the OS likes.
    /// Panics if the address space cannot be reserved; see `try_new`.
    pub fn new() -> Heap {
        Heap::try_new().expect("detheap: cannot create a heap")
    }

    /// A heap with the default settings, or the OS error.
    pub fn try_new() -> io::Result<Heap> {
        Heap::create(0, 0)
    }

    /// A heap reserving `reserve` bytes (0: the default 64 GiB) at the
    /// fixed address `base` (0: anywhere).  A fixed base makes absolute
    /// addresses, not just offsets, repeat across processes.  Fails with
    /// EEXIST when the range is taken, EINVAL for a misaligned base.
    pub fn create(base: usize, reserve: u64) -> io::Result<Heap> {
        let mut cfg = core::mem::MaybeUninit::<ffi::dh_config_t>::uninit();
        let raw = unsafe {
            ffi::dh_config_init(cfg.as_mut_ptr());
            let mut cfg = cfg.assume_init();
            cfg.base = base;
            cfg.reserve = reserve;
            ffi::dh_heap_create(&cfg)
        };
        NonNull::new(raw).map(|raw| Heap { raw }).ok_or_else(io::Error::last_os_error)
    }

    /// The C heap, for the `ffi` functions.  It stays owned by `self`.
    pub fn as_raw(&self) -> *mut ffi::dh_heap_t {
        self.raw.as_ptr()
    }

    /// The first address of the heap's range.
    pub fn base(&self) -> usize {
        unsafe { ffi::dh_heap_base(self.raw.as_ptr()) }
    }

    /// Allocate a block of at least `size` bytes.  Panics when memory runs
    /// out (the original design could not fail either); see `try_alloc`.
    pub fn alloc(&mut self, size: usize) -> Handle {
        self.try_alloc(size).expect("detheap: out of memory")
    }

    /// Allocate a block of at least `size` bytes, or `None` when the
    /// heap's range or the OS runs out (the heap stays usable).
    pub fn try_alloc(&mut self, size: usize) -> Option<Handle> {
        let h = unsafe { ffi::dh_alloc(self.raw.as_ptr(), size) };
        (h.id != 0).then_some(Handle(h))
    }

    /// Free a block.  Freeing a freed, stale or foreign handle does
    /// nothing (it is only counted).
    pub fn free(&mut self, handle: Handle) {
        unsafe { ffi::dh_free_handle(self.raw.as_ptr(), handle.0) }
    }

    /// The block's bytes (its whole usable size), or `None` if the handle
    /// is not live.
    pub fn get(&self, handle: Handle) -> Option<&[u8]> {
        let mut len = 0usize;
        let p = unsafe { ffi::dh_get(self.raw.as_ptr(), handle.0, &mut len) };
        // Block contents are always initialised (zero when fresh, else what
        // was last written), so a byte slice over them is sound.
        NonNull::new(p.cast::<u8>())
            .map(|p| unsafe { core::slice::from_raw_parts(p.as_ptr(), len) })
    }

    /// The block's bytes, writable, or `None` if the handle is not live.
    pub fn get_mut(&mut self, handle: Handle) -> Option<&mut [u8]> {
        let mut len = 0usize;
        let p = unsafe { ffi::dh_get(self.raw.as_ptr(), handle.0, &mut len) };
        NonNull::new(p.cast::<u8>())
            .map(|p| unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) })
    }

    /// Copy as much of `data` as fits into the block.  Returns false,
    /// writing nothing, when the handle is not live.
    pub fn write(&mut self, handle: Handle, data: &[u8]) -> bool {
        unsafe { ffi::dh_write(self.raw.as_ptr(), handle.0, data.as_ptr().cast(), data.len()) }
    }

    /// All the heap's statistics.
    pub fn stats(&self) -> ffi::dh_stats_t {
        let mut s = ffi::dh_stats_t::default();
        let ok = unsafe {
            ffi::dh_heap_stats(self.raw.as_ptr(), &mut s, core::mem::size_of::<ffi::dh_stats_t>())
        };
        assert!(ok, "dh_heap_stats refused a valid heap");
        s
    }

    /// Blocks in use.
    pub fn live_count(&self) -> usize {
        self.stats().live_count as usize
    }
    /// Blocks ever carved from fresh storage.
    pub fn total_blocks(&self) -> usize {
        self.stats().total_blocks as usize
    }
    /// Bytes carved from the heap's range; never shrinks.
    pub fn storage_bytes(&self) -> usize {
        self.stats().storage_bytes as usize
    }
    /// Free blocks waiting for reuse.
    pub fn free_block_count(&self) -> usize {
        self.stats().free_block_count as usize
    }
    /// Successful allocations.
    pub fn alloc_count(&self) -> usize {
        self.stats().alloc_count as usize
    }
    /// Frees that freed a live block (no-op frees are not counted).
    pub fn free_count(&self) -> usize {
        self.stats().free_count as usize
    }

    /// Validate every invariant: `Ok` or the number of the first broken
    /// one (I1..I9, docs/DESIGN.md).
    pub fn check(&self) -> Result<(), u32> {
        match unsafe { ffi::dh_heap_check(self.raw.as_ptr()) } {
            ffi::DH_CHECK_OK => Ok(()),
            n => Err(n as u32),
        }
    }
}

/// How [`Heap::open`] maps an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Copy-on-write: the file is never changed.
    Private,
    /// Writes reach the file: a persistent heap, sealed when dropped.
    Shared,
}

/// A snapshot of a [`Heap`]: [`Heap::rollback`] puts the heap back the way
/// it was when the snapshot was taken, copying back only the pages written
/// since.  Freed when dropped (the heap may be gone by then).
pub struct Snapshot {
    raw: NonNull<ffi::dh_snapshot_t>,
}

// A snapshot is memory of its own, touched only through `&mut Heap` calls.
unsafe impl Send for Snapshot {}

impl Drop for Snapshot {
    fn drop(&mut self) {
        unsafe { ffi::dh_snapshot_free(self.raw.as_ptr()) }
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

impl Heap {
    /// Write the heap to an image file (the heap must have been created at
    /// a fixed base); [`Heap::open`] maps it again, in this process or
    /// another, with every handle and byte as it is now.  Errors are the
    /// C library's (docs/IMAGE.md): EINVAL without a fixed base, the
    /// file system's own.
    pub fn save<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        let path = c_path(path.as_ref())?;
        match unsafe { ffi::dh_heap_save(self.raw.as_ptr(), path.as_ptr()) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Map an image written by [`Heap::save`] at its base.  Lazy: the data
    /// is read as it is used.  Fails with EEXIST when the range is taken,
    /// EINVAL or ENOEXEC for a damaged or foreign file, EBUSY when another
    /// process has it open shared.
    pub fn open<P: AsRef<Path>>(path: P, mode: OpenMode) -> io::Result<Heap> {
        let path = c_path(path.as_ref())?;
        let flags = match mode {
            OpenMode::Private => ffi::DH_OPEN_PRIVATE,
            OpenMode::Shared => ffi::DH_OPEN_SHARED,
        };
        let raw = unsafe { ffi::dh_heap_open(path.as_ptr(), flags) };
        NonNull::new(raw).map(|raw| Heap { raw }).ok_or_else(io::Error::last_os_error)
    }

    /// Keep one handle in the heap (saved and opened with it, restored by
    /// a rollback): where a program finds its data in an image.
    pub fn set_root(&mut self, root: Option<Handle>) {
        let p = match root {
            Some(h) => unsafe { ffi::dh_ptr_of(self.raw.as_ptr(), h.0) },
            None => core::ptr::null_mut(),
        };
        unsafe { ffi::dh_heap_set_root(self.raw.as_ptr(), p) }
    }

    /// The handle kept by [`Heap::set_root`], if it is a live block.
    pub fn root(&self) -> Option<Handle> {
        let p = unsafe { ffi::dh_heap_root(self.raw.as_ptr()) };
        let h = unsafe { ffi::dh_handle_of(p) };
        (h.id != 0).then_some(Handle(h))
    }

    /// Take a snapshot (one per heap at a time: EBUSY otherwise; EINVAL for
    /// a heap opened shared).  Costs a copy of the committed memory, once.
    pub fn snapshot(&mut self) -> io::Result<Snapshot> {
        let raw = unsafe { ffi::dh_heap_snapshot(self.raw.as_ptr()) };
        NonNull::new(raw).map(|raw| Snapshot { raw }).ok_or_else(io::Error::last_os_error)
    }

    /// Put the heap back as it was when `snap` was taken: contents,
    /// handles, statistics and root.  Costs O(pages written since).
    /// EINVAL if `snap` is another heap's.
    pub fn rollback(&mut self, snap: &Snapshot) -> io::Result<()> {
        if unsafe { ffi::dh_heap_rollback(self.raw.as_ptr(), snap.raw.as_ptr()) } {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Default for Heap {
    fn default() -> Heap {
        Heap::new()
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        unsafe { ffi::dh_heap_destroy(self.raw.as_ptr()) }
    }
}
