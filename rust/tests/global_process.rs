//! `DetHeap::new()`: the library's process heap (dh_malloc & co, one heap
//! per thread) as this test binary's global allocator.
mod common;

use detheap::DetHeap;

#[global_allocator]
static ALLOC: DetHeap = DetHeap::new();

#[test]
fn blocks_come_from_detheap() {
    let b = Box::new([0u8; 100]);
    let p = b.as_ptr().cast();
    let heap = unsafe { detheap::ffi::dh_heap_of(p) };
    assert!(!heap.is_null());
    // the process heap's class set (DETHEAP_CLASSES, default fine: 112)
    let want = unsafe {
        let set = detheap::ffi::dh_heap_class_set(heap);
        detheap::ffi::dh_class_set_size(set, detheap::ffi::dh_class_set_of(set, 100))
    };
    assert!(want == 112 || want == 128);
    assert_eq!(unsafe { detheap::ffi::dh_usable_size(p) }, want);
    assert_eq!(ALLOC.base(), None);
}

#[test]
fn threads_on_their_own_heaps() {
    common::threaded_churn(4, 3000);
    let s = ALLOC.stats().expect("stats");
    assert_eq!(s.rejected_frees, 0);
    assert!(s.alloc_count > 4 * 3000);
}

#[test]
fn over_aligned_allocations() {
    common::over_aligned();
}

#[test]
fn zeroed_and_realloc_keep_contents() {
    let z = vec![0u64; 10_000];
    assert!(z.iter().all(|&x| x == 0));
    let mut v: Vec<u32> = Vec::new();
    for i in 0..100_000 {
        v.push(i);
    }
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
}
