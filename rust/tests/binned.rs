//! The original design's tests (BinnedAllocator, `mod tests`), each ported
//! to `Heap`: block indices become handles, the `alloc_count`/`free_count`
//! fields become methods, `bin_for_size` becomes `size_class`.  A few
//! follow-ups check what the port changes on purpose (blocks are their
//! class size; statistics are the library's).
use detheap::{class_size, size_class, Heap};

#[test]
fn test_bin_selection() {
    assert_eq!(size_class(1), Some(0)); // 16 B
    assert_eq!(size_class(16), Some(0)); // 16 B
    assert_eq!(size_class(17), Some(1)); // 32 B
    assert_eq!(size_class(48), Some(2)); // 48 B
    assert_eq!(size_class(65), Some(4)); // 128 B
    assert_eq!(size_class(65536), Some(12)); // 64 KB
    assert_eq!(size_class(65537), None); // overflow
}

#[test]
fn test_alloc_and_read() {
    let mut alloc = Heap::new();
    let b = alloc.alloc(8);
    assert!(alloc.write(b, &[1, 2, 3, 4, 5, 6, 7, 8]));
    assert_eq!(&alloc.get(b).unwrap()[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn test_free_and_reuse() {
    let mut alloc = Heap::new();
    let b1 = alloc.alloc(16);
    alloc.free(b1);

    // Next alloc of same size class should reuse b1's slot.
    let b2 = alloc.alloc(16);
    assert_eq!(b1, b2, "LIFO reuse");
}

#[test]
fn test_double_free_harmless() {
    let mut alloc = Heap::new();
    let b = alloc.alloc(16);
    alloc.free(b);
    alloc.free(b); // should not panic
    assert_eq!(alloc.free_count(), 1, "second free should be no-op");
}

#[test]
fn test_storage_never_shrinks() {
    let mut alloc = Heap::new();
    for _ in 0..100 {
        let b = alloc.alloc(64);
        alloc.free(b);
    }
    let bytes = alloc.storage_bytes();
    // After many alloc/free cycles, storage should have grown.
    assert!(bytes > 0);
    // Storage never shrinks.
    for _ in 0..100 {
        let b = alloc.alloc(64);
        alloc.free(b);
    }
    assert_eq!(alloc.storage_bytes(), bytes, "storage must not shrink");
}

#[test]
fn test_deterministic_alloc_order() {
    let mut a1 = Heap::new();
    let mut a2 = Heap::new();

    let seq1: Vec<u64> = (0..10).map(|_| a1.alloc(32).id()).collect();
    let seq2: Vec<u64> = (0..10).map(|_| a2.alloc(32).id()).collect();

    assert_eq!(seq1, seq2, "same alloc sequence -> same block handles");
}

#[test]
fn test_lifo_free_order() {
    let mut alloc = Heap::new();
    let b1 = alloc.alloc(32);
    let b2 = alloc.alloc(32);
    let b3 = alloc.alloc(32);

    // Free in order: b1, b2, b3
    alloc.free(b1);
    alloc.free(b2);
    alloc.free(b3);

    // LIFO: next alloc should return b3, then b2, then b1.
    assert_eq!(alloc.alloc(32), b3);
    assert_eq!(alloc.alloc(32), b2);
    assert_eq!(alloc.alloc(32), b1);
}

#[test]
fn test_overflow_alloc() {
    let mut alloc = Heap::new();
    let b = alloc.alloc(100_000); // > 64 KB
    assert!(alloc.write(b, &[0xAB; 100]));
    assert_eq!(alloc.get(b).unwrap()[0], 0xAB);
}

#[test]
fn test_live_count() {
    let mut alloc = Heap::new();
    let b1 = alloc.alloc(16);
    let b2 = alloc.alloc(32);
    let _b3 = alloc.alloc(64);
    assert_eq!(alloc.live_count(), 3);

    alloc.free(b1);
    assert_eq!(alloc.live_count(), 2);

    alloc.free(b2);
    assert_eq!(alloc.live_count(), 1);
}

#[test]
fn test_freed_block_not_readable() {
    let mut alloc = Heap::new();
    let b = alloc.alloc(16);
    alloc.free(b);
    assert!(alloc.get(b).is_none(), "freed block should not be readable");
}

#[test]
fn test_mixed_size_classes() {
    let mut alloc = Heap::new();
    let small = alloc.alloc(8);
    let medium = alloc.alloc(256);
    let large = alloc.alloc(4096);

    alloc.free(small);
    alloc.free(medium);
    alloc.free(large);

    // Each reuses its own size class.
    let s2 = alloc.alloc(8);
    let m2 = alloc.alloc(256);
    let l2 = alloc.alloc(4096);

    assert_eq!(s2, small);
    assert_eq!(m2, medium);
    assert_eq!(l2, large);
}

// ---- beyond the original tests -------------------------------------------

/// The size-class map agrees with the table for every size up to 64 KiB + 1.
#[test]
fn size_class_matches_table() {
    const SIZES: [usize; 13] =
        [16, 32, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536];
    for (c, &s) in SIZES.iter().enumerate() {
        assert_eq!(class_size(c), s);
    }
    assert_eq!(class_size(13), 0);
    for n in 1..=65537usize {
        let want = SIZES.iter().position(|&s| n <= s);
        assert_eq!(size_class(n), want, "n = {n}");
    }
}

/// A block's slice is its whole class, writes are clipped to it, and the
/// counters match the calls made.
#[test]
fn slices_counters_and_check() {
    let mut heap = Heap::new();
    let h = heap.alloc(20);
    assert_eq!(heap.get(h).unwrap().len(), 32);
    assert!(heap.write(h, &[9u8; 100]));
    assert!(heap.get(h).unwrap().iter().all(|&b| b == 9));
    heap.get_mut(h).unwrap()[31] = 1;
    assert_eq!(heap.get(h).unwrap()[31], 1);

    let others: Vec<_> = (0..5).map(|i| heap.alloc(i * 1000)).collect();
    for &o in &others[..3] {
        heap.free(o);
    }
    assert_eq!(heap.alloc_count(), 6);
    assert_eq!(heap.free_count(), 3);
    assert_eq!(heap.live_count(), 3);
    assert_eq!(heap.free_block_count(), 3);
    assert!(heap.total_blocks() >= 6);
    assert_eq!(heap.check(), Ok(()));

    heap.free(h);
    assert!(!heap.write(h, b"stale"));
    assert!(heap.get_mut(h).is_none());
}

/// Two heaps at the same fixed base, one after the other, hand out the same
/// absolute addresses (the C block pointer is reachable through ffi).
#[test]
fn fixed_base_repeats_addresses() {
    const BASE: usize = 0x4200_0000_0000;
    let run = || {
        let mut heap = Heap::create(BASE, 0).expect("fixed base free");
        assert_eq!(heap.base(), BASE);
        let hs: Vec<_> = [10usize, 300, 5000, 70_000].iter().map(|&n| heap.alloc(n)).collect();
        hs.iter()
            .map(|&h| unsafe { detheap::ffi::dh_ptr_of(heap.as_raw(), h.raw()) } as usize)
            .collect::<Vec<_>>()
    };
    let first = run();
    assert!(first.iter().all(|&a| a > BASE));
    assert_eq!(first, run());
}
