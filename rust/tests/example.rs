//! Runs examples/addresses twice and requires identical output: with a
//! fixed base, detheap gives a program the same absolute addresses in every
//! process.  `cargo test` builds the examples next to the test binaries.
use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/example-<hash>  ->  target/<profile>/examples/
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join("examples").join(name);
    assert!(path.is_file(), "{} not built: run `cargo test` (it builds examples)", path.display());
    path
}

fn run(path: &PathBuf) -> String {
    let out = Command::new(path).output().expect("run the example");
    assert!(out.status.success(), "example failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn addresses_repeat_across_processes() {
    let path = example("addresses");
    let first = run(&path);
    let second = run(&path);
    let addrs: Vec<usize> = first
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter_map(|w| w.strip_prefix("0x"))
        .map(|h| usize::from_str_radix(h, 16).expect("hex address"))
        .collect();
    assert!(addrs.len() >= 7, "too few addresses in:\n{first}");
    // Every address lies in the heap's fixed range.
    let base = 0x5000_0000_0000usize;
    assert!(addrs.iter().all(|&a| a >= base && a < base + (64usize << 30)), "{first}");
    assert_eq!(first, second, "two runs printed different addresses");
}
