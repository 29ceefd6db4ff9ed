//! The hand-written declarations of src/ffi.rs against the linked library:
//! the version and the sizes of the structs the library stamps with its
//! own sizeof.  A field added in C but not here shows up as a size mismatch.
use detheap::ffi;
use std::mem::{size_of, MaybeUninit};

#[test]
fn version_matches_library() {
    assert_eq!(detheap::version(), ffi::DH_VERSION);
}

#[test]
fn config_layout_matches_library() {
    let mut cfg = MaybeUninit::<ffi::dh_config_t>::uninit();
    let cfg = unsafe {
        ffi::dh_config_init(cfg.as_mut_ptr());
        cfg.assume_init()
    };
    assert_eq!(cfg.struct_size as usize, size_of::<ffi::dh_config_t>());
    assert_eq!(cfg.version, ffi::DH_VERSION);
    assert_eq!((cfg.reserve, cfg.base, cfg.on_error), (0, 0, ffi::DH_ON_ERROR_IGNORE));
}

#[test]
fn stats_layout_matches_library() {
    let heap = detheap::Heap::new();
    let s = heap.stats();
    assert_eq!(s.struct_size as usize, size_of::<ffi::dh_stats_t>());
    assert_eq!(s.version, ffi::DH_STATS_VERSION);
    // The last field must be where C put it: class sizes in order.
    for c in 0..ffi::DH_NUM_CLASSES {
        assert_eq!(s.classes[c].size as usize, detheap::class_size(c));
    }
}

#[test]
fn handle_round_trip_through_pointers() {
    let mut heap = detheap::Heap::new();
    let h = heap.alloc(40);
    let p = unsafe { ffi::dh_ptr_of(heap.as_raw(), h.raw()) };
    assert!(!p.is_null());
    assert_eq!(unsafe { ffi::dh_handle_of(p) }, h.raw());
    assert_eq!(unsafe { ffi::dh_heap_of(p) }, heap.as_raw());
    assert_eq!(unsafe { ffi::dh_usable_size(p) }, 48);
}
