// handle_ops.rs - the twin of handle_ops.c for the original Rust design
// (binned_alloc.rs, which the benchmark script copies beside this file as
// a module before compiling with `rustc -O`).  Same parsing before timing,
// same pattern buffer, same checksum, same output:
//
//   handle_ops_rs FILE [MIN_SECONDS]  print "BEST MEDIAN OPS RUNS" (ops/s)
//   handle_ops_rs --print FILE        print what the reference prints
#![allow(dead_code)]

mod binned_alloc;

use binned_alloc::BinnedAllocator;
use std::io::Write;
use std::time::Instant;

#[derive(Clone, Copy)]
enum Op {
    Alloc(usize),
    Free(usize),
    Write(usize, usize, usize),
    Read(usize, usize),
    Stats,
}

fn parse(path: &str) -> (Vec<Op>, usize, usize) {
    let text = std::fs::read_to_string(path).expect("cannot read the script");
    let mut ops = Vec::new();
    let (mut n_alloc, mut max_len) = (0usize, 0usize);
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let tag = it.next().unwrap();
        let mut num = || -> usize { it.next().expect("missing field").parse().expect("bad number") };
        let op = match tag {
            "a" => {
                n_alloc += 1;
                Op::Alloc(num())
            }
            "f" => Op::Free(num()),
            "w" => {
                let (k, len, b) = (num(), num(), num() & 0xff);
                max_len = max_len.max(len);
                Op::Write(k, len, b)
            }
            "r" => {
                let (k, len) = (num(), num());
                Op::Read(k, len)
            }
            "s" => Op::Stats,
            _ => panic!("unknown operation"),
        };
        ops.push(op);
    }
    (ops, n_alloc, max_len)
}

fn fnv1a(p: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in p {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn run(a: &mut BinnedAllocator, ops: &[Op], hs: &mut Vec<usize>, pattern: &[u8],
       mut out: Option<&mut dyn Write>) -> u64 {
    let mut sum: u64 = 0;
    hs.clear();
    for op in ops {
        match *op {
            Op::Alloc(size) => {
                let h = a.alloc(size);
                hs.push(h);
                sum = sum.wrapping_add(h as u64);
                if let Some(o) = out.as_mut() { writeln!(o, "{}", h).unwrap(); }
            }
            Op::Free(k) => {
                a.free(hs[k]);
                sum = sum.wrapping_add(1);
                if let Some(o) = out.as_mut() { writeln!(o, "ok").unwrap(); }
            }
            Op::Write(k, len, b) => {
                let live = a.write(hs[k], &pattern[b..b + len]);
                sum = sum.wrapping_add(live as u64);
                if let Some(o) = out.as_mut() { writeln!(o, "{}", live).unwrap(); }
            }
            Op::Read(k, len) => match a.get(hs[k]) {
                None => {
                    sum = sum.wrapping_add(7);
                    if let Some(o) = out.as_mut() { writeln!(o, "none").unwrap(); }
                }
                Some(p) => {
                    let h = fnv1a(&p[..len.min(p.len())]);
                    sum ^= h;
                    if let Some(o) = out.as_mut() { writeln!(o, "{:016x}", h).unwrap(); }
                }
            },
            Op::Stats => {
                let (al, fr, li, bl, fb) = (a.alloc_count, a.free_count, a.live_count(),
                                            a.total_blocks(), a.free_block_count());
                sum = sum.wrapping_add((al + fr + li + bl + fb) as u64);
                if let Some(o) = out.as_mut() {
                    writeln!(o, "alloc={} free={} live={} blocks={} freeblocks={}",
                             al, fr, li, bl, fb).unwrap();
                }
            }
        }
    }
    sum
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let print = args.len() == 3 && args[1] == "--print";
    if !print && (args.len() < 2 || args.len() > 3) {
        eprintln!("usage: handle_ops_rs FILE [MIN_SECONDS] | handle_ops_rs --print FILE");
        std::process::exit(2);
    }
    let (ops, n_alloc, max_len) = parse(if print { &args[2] } else { &args[1] });
    let min_seconds: f64 = if !print && args.len() == 3 { args[2].parse().unwrap() } else { 0.3 };
    let pattern: Vec<u8> = (0..256 + max_len + 1).map(|j| j as u8).collect();
    let mut hs: Vec<usize> = Vec::with_capacity(n_alloc + 1);

    if print {
        let stdout = std::io::stdout();
        let mut lock = std::io::BufWriter::new(stdout.lock());
        let mut a = BinnedAllocator::new();
        run(&mut a, &ops, &mut hs, &pattern, Some(&mut lock));
        return;
    }
    let mut rates: Vec<f64> = Vec::new();
    let (mut total, mut check) = (0.0f64, 0u64);
    while rates.len() < 1000 && (rates.len() < 3 || total < min_seconds) {
        let mut a = BinnedAllocator::new();
        let t0 = Instant::now();
        let sum = run(&mut a, &ops, &mut hs, &pattern, None);
        let t = t0.elapsed().as_secs_f64();
        drop(a);
        if !rates.is_empty() && sum != check {
            panic!("the checksum changed between runs");
        }
        check = sum;
        rates.push(ops.len() as f64 / t);
        total += t;
    }
    rates.sort_by(|x, y| x.partial_cmp(y).unwrap());
    println!("{:.0} {:.0} {} {}", rates[rates.len() - 1], rates[(rates.len() - 1) / 2],
             ops.len(), rates.len());
}
