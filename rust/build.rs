//! build.rs - link the detheap C library into whatever uses this crate.
//!
//! The library is linked statically (libdetheap.a) so that programs built
//! with the crate run without LD_LIBRARY_PATH.  It is looked for in
//! DETHEAP_LIB_DIR, else in ../build relative to this crate, which is where
//! the repository's `make` builds it.
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DETHEAP_LIB_DIR");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dir = match env::var_os("DETHEAP_LIB_DIR") {
        Some(d) => manifest.join(d), // an absolute d replaces the join
        None => manifest.join("..").join("build"),
    };
    let archive = dir.join("libdetheap.a");
    if !archive.is_file() {
        panic!(
            "libdetheap.a not found in {}: build the C library first \
             (`make` at the repository root) or set DETHEAP_LIB_DIR to the \
             directory that holds it",
            dir.display()
        );
    }
    // rustc runs elsewhere: hand it an absolute directory.
    let dir = dir.canonicalize().expect("library directory");
    println!("cargo:rerun-if-changed={}", archive.display());
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=static=detheap");
    // The process heap wraps pthread_create and finds the real one with dlsym.
    println!("cargo:rustc-link-lib=dylib=pthread");
    println!("cargo:rustc-link-lib=dylib=dl");
}
