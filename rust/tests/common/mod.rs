//! Shared by the global-allocator tests: a workload that stresses a
//! `DetHeap` from several threads at once, checking every byte it wrote.
use std::collections::BTreeMap;
use std::thread;

/// Allocate, grow, shrink and free from `threads` threads; each thread
/// checks its data survived, so a broken lock or a block handed out twice
/// shows up as corrupted contents.
pub fn threaded_churn(threads: usize, rounds: usize) {
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            thread::spawn(move || {
                let mut keep: Vec<Vec<u8>> = Vec::new();
                let mut map = BTreeMap::new();
                for i in 0..rounds {
                    let n = (i * 37 + t * 11) % 3000 + 1;
                    let mut v = vec![(t as u8) ^ (i as u8); n];
                    v.extend_from_slice(&[1, 2, 3]);
                    v.shrink_to_fit();
                    keep.push(v);
                    map.insert(i, format!("{t}-{i}"));
                    if i % 3 == 0 {
                        let old = keep.swap_remove(i % keep.len());
                        assert!(old[..old.len() - 3].iter().all(|&b| b == old[0]));
                        map.remove(&(i / 2));
                    }
                }
                for v in &keep {
                    assert_eq!(&v[v.len() - 3..], &[1, 2, 3]);
                }
                for (k, s) in &map {
                    assert_eq!(s, &format!("{t}-{k}"));
                }
                keep.len()
            })
        })
        .collect();
    for w in workers {
        assert!(w.join().expect("worker panicked") > 0);
    }
}

/// Alignments above the 16-byte minimum, through alloc and realloc.
pub fn over_aligned() {
    #[repr(align(256))]
    struct A256([u8; 300]);
    let mut boxes: Vec<Box<A256>> = (0..40).map(|i| Box::new(A256([i as u8; 300]))).collect();
    for (i, b) in boxes.iter().enumerate() {
        assert_eq!((&**b as *const A256 as usize) % 256, 0);
        assert_eq!(b.0[299], i as u8);
    }
    let mut v: Vec<A256> = Vec::with_capacity(1);
    for i in 0..50 {
        v.push(A256([i; 300])); // grows through realloc
        assert_eq!(v.as_ptr() as usize % 256, 0);
    }
    assert!(v.iter().enumerate().all(|(i, a)| a.0[0] == i as u8));
    boxes.clear();
}
