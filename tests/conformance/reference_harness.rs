// reference_harness.rs - answers an op script (FORMAT.md's format, read on
// standard input) with the original design's `BinnedAllocator`, printing one
// line per operation.  Its output is what a caseNN.expected holds.
//
// The reference implementation itself is not part of this repository: the
// generator (gen_ops.py) copies it next to this file as `binned_alloc.rs`
// in a temporary directory and compiles the two with `rustc -O`, so only
// the *answers* of the reference are ever committed.

mod binned_alloc;

use binned_alloc::BinnedAllocator;
use std::io::{self, BufRead, BufWriter, Write};

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

// A malformed script is a bug in the generator: stop loudly rather than
// produce an expected file that silently disagrees with the script.
fn num(fields: &[&str], i: usize, lineno: usize) -> usize {
    fields
        .get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("line {}: missing or bad operand {}", lineno, i))
}

fn main() {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut heap = BinnedAllocator::new();
    // handles[k]: what the k-th `a` line returned, kept after frees so that
    // stale handles can be used on purpose.
    let mut handles: Vec<usize> = Vec::new();
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.expect("read error");
        let lineno = i + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = t.split_whitespace().collect();
        let handle = |k: usize| -> usize {
            *handles
                .get(k)
                .unwrap_or_else(|| panic!("line {}: K names no allocation yet", lineno))
        };
        match f[0] {
            "a" => {
                let h = heap.alloc(num(&f, 1, lineno));
                handles.push(h);
                writeln!(out, "{}", h).unwrap();
            }
            "f" => {
                heap.free(handle(num(&f, 1, lineno)));
                writeln!(out, "ok").unwrap();
            }
            "w" => {
                let h = handle(num(&f, 1, lineno));
                let len = num(&f, 2, lineno);
                let b = num(&f, 3, lineno);
                let data: Vec<u8> = (0..len).map(|i| (b + i) as u8).collect();
                writeln!(out, "{}", heap.write(h, &data)).unwrap();
            }
            "r" => {
                let h = handle(num(&f, 1, lineno));
                let len = num(&f, 2, lineno);
                match heap.get(h) {
                    None => writeln!(out, "none").unwrap(),
                    Some(bytes) => {
                        let n = len.min(bytes.len());
                        writeln!(out, "{:016x}", fnv1a(&bytes[..n])).unwrap()
                    }
                }
            }
            "s" => {
                writeln!(
                    out,
                    "alloc={} free={} live={} blocks={} freeblocks={}",
                    heap.alloc_count,
                    heap.free_count,
                    heap.live_count(),
                    heap.total_blocks(),
                    heap.free_block_count()
                )
                .unwrap();
            }
            op => panic!("line {}: unknown operation {}", lineno, op),
        }
    }
}
