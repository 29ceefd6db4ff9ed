//! addresses: a program whose every Rust allocation comes from detheap, at
//! a fixed base.  It prints the absolute address of a few allocations; run
//! it twice and the output is the same, ASLR or not (tests/example.rs
//! checks exactly that).
//!
//!     cargo run --offline --example addresses
//!
//! To use the library's per-thread process heap instead, declare
//! `DetHeap::new()`; its base is then DETHEAP_BASE (docs/OPTIONS.md).
use detheap::DetHeap;
use std::collections::BTreeMap;

/// A multiple of 64 GiB well away from where Linux puts mappings.
const BASE: usize = 0x5000_0000_0000;

#[global_allocator]
static ALLOC: DetHeap = DetHeap::with_base(BASE);

fn show(what: &str, addr: *const u8) {
    println!("{what:<16} {addr:p}");
}

fn main() {
    let boxed = Box::new(42u64);
    show("Box<u64>", (&*boxed as *const u64).cast());

    let mut v: Vec<u32> = Vec::with_capacity(100);
    v.extend(0..100);
    show("Vec<u32>[100]", v.as_ptr().cast());

    let s = String::from("deterministic");
    show("String", s.as_ptr());

    let big = vec![7u8; 200_000];
    show("Vec<u8>[200000]", big.as_ptr());

    let mut map = BTreeMap::new();
    for i in 0..50u32 {
        map.insert(i, i.to_string());
    }
    show("BTreeMap value", map[&25].as_ptr());

    let aligned = Box::new(Page([1; 4096]));
    show("Box<Page>", (&*aligned as *const Page).cast());
    assert_eq!(aligned.0[4095], 1);

    // LIFO reuse: the freed block comes straight back.
    let freed = (&*boxed as *const u64).cast::<u8>();
    drop(boxed);
    let again = Box::new(7u64);
    show("Box<u64> again", (&*again as *const u64).cast());
    assert_eq!(freed, (&*again as *const u64).cast(), "LIFO reuse");

    match ALLOC.base() {
        Some(b) if b == BASE => println!("heap base        {b:#x}"),
        other => {
            eprintln!("addresses: heap not at {BASE:#x} ({other:x?})");
            std::process::exit(1);
        }
    }
    let stats = ALLOC.stats().expect("stats");
    println!("live blocks      {}", stats.live_count);
}

/// An over-aligned type, to exercise the aligned path.
#[repr(align(4096))]
struct Page([u8; 4096]);
