//! Heap images and snapshots through the crate: a heap at a fixed base is
//! rolled back to a snapshot, saved, and opened again (privately and
//! shared) with its handles, bytes and root as they were.
use detheap::{Heap, OpenMode};
use std::path::PathBuf;

const BASE: usize = 0x5450_0000_0000;
const RESERVE: u64 = 16 << 20;

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("detheap-rust-{}-{}", std::process::id(), name))
}

#[test]
fn snapshot_save_open() {
    let path = scratch("image.img");
    let mut heap = Heap::create(BASE, RESERVE).expect("heap at a fixed base");
    let a = heap.alloc(40);
    assert!(heap.write(a, b"before the snapshot"));
    heap.set_root(Some(a));
    let snap = heap.snapshot().expect("snapshot");
    assert_eq!(heap.snapshot().err().map(|e| e.raw_os_error()), Some(Some(libc_ebusy())));
    let mut next = None;
    for round in 0..100 {
        heap.free(a);
        let b = heap.alloc(40);
        assert_eq!(b, a, "LIFO reuse");
        assert!(heap.write(b, b"overwritten"));
        let c = heap.alloc(100_000);
        match next {
            None => next = Some(c),
            Some(n) => assert_eq!(c, n, "round {}", round),
        }
        heap.set_root(Some(c));
        heap.rollback(&snap).expect("rollback");
        assert_eq!(&heap.get(a).unwrap()[..19], b"before the snapshot");
        assert_eq!(heap.root(), Some(a));
        assert_eq!(heap.live_count(), 1);
    }
    drop(snap);
    heap.save(&path).expect("save");
    drop(heap);

    let mut heap = Heap::open(&path, OpenMode::Shared).expect("open shared");
    assert_eq!(heap.base(), BASE);
    assert_eq!(heap.root(), Some(a));
    assert_eq!(&heap.get(a).unwrap()[..19], b"before the snapshot");
    let d = heap.alloc(16);
    assert!(heap.write(d, b"persisted"));
    heap.set_root(Some(d));
    assert!(heap.check().is_ok());
    drop(heap);

    let heap = Heap::open(&path, OpenMode::Private).expect("open private");
    assert_eq!(heap.root(), Some(d));
    assert_eq!(&heap.get(d).unwrap()[..9], b"persisted");
    assert_eq!(heap.live_count(), 2);
    // the range is taken while this heap lives
    let err = Heap::open(&path, OpenMode::Private).err().expect("refused");
    assert!(err.raw_os_error().is_some());
    drop(heap);
    // the info struct as C fills it
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let mut info = std::mem::MaybeUninit::<detheap::ffi::dh_image_info_t>::uninit();
    let size = std::mem::size_of::<detheap::ffi::dh_image_info_t>();
    let rc = unsafe { detheap::ffi::dh_image_info(c.as_ptr(), info.as_mut_ptr(), size) };
    assert_eq!(rc, 0);
    let info = unsafe { info.assume_init() };
    assert_eq!(info.struct_size as usize, size);
    assert_eq!((info.base, info.live_count, info.sealed), (BASE as u64, 2, 1));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn save_needs_a_fixed_base() {
    let heap = Heap::new();
    let err = heap.save(scratch("anywhere.img")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(22)); // EINVAL
    let missing = Heap::open(scratch("missing.img"), OpenMode::Private).err().unwrap();
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
}

fn libc_ebusy() -> i32 {
    16
}
