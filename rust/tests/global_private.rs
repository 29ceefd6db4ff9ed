//! `DetHeap::with_base`: one private heap at a fixed base behind the spin
//! lock, as this test binary's global allocator.  The test harness itself
//! runs on it, with one thread per test.
mod common;

use detheap::DetHeap;

const BASE: usize = 0x5800_0000_0000;

#[global_allocator]
static ALLOC: DetHeap = DetHeap::with_base(BASE);

#[test]
fn heap_sits_at_its_base() {
    let b = Box::new(1u32);
    assert_eq!(ALLOC.base(), Some(BASE));
    let addr = &*b as *const u32 as usize;
    assert!(addr > BASE && addr < BASE + (64usize << 30), "{addr:#x}");
}

#[test]
fn threads_share_the_locked_heap() {
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
    let z = vec![0u64; 10_000]; // alloc_zeroed
    assert!(z.iter().all(|&x| x == 0));
    let mut s = String::new();
    for i in 0..2000 {
        s.push_str(&i.to_string()); // realloc, small and large
    }
    assert!(s.starts_with("0123456789101112"));
    assert!(s.ends_with("19981999"));
}
