//! Raw declarations of the C API in `include/detheap.h`, written by hand
//! from the header (no generator).  Names and layouts are the C ones; the
//! safe API is in `heap` and `global`.  Every struct is `#[repr(C)]` and its
//! size is checked against the library at test time (tests/layout.rs),
//! because the library stamps `struct_size` into the structs it fills.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void}; // core::ffi's: rustc 1.64

pub const DH_VERSION_MAJOR: u32 = 1;
pub const DH_VERSION_MINOR: u32 = 0;
pub const DH_VERSION_PATCH: u32 = 0;
pub const DH_VERSION: u32 = (DH_VERSION_MAJOR << 16) | (DH_VERSION_MINOR << 8) | DH_VERSION_PATCH;

pub const DH_NUM_CLASSES: usize = 13;
pub const DH_MAX_CLASS_SIZE: usize = 65536;
pub const DH_HEAP_ALIGN: u64 = 1 << 32;
pub const DH_DEFAULT_RESERVE: u64 = 64 << 30;
pub const DH_STATS_VERSION: u32 = 3;
pub const DH_CLASSES_MAX: usize = 64;
pub const DH_CLASSES_SPEC: c_int = 0;
pub const DH_CLASSES_FINE: c_int = 1;

/// Opaque heap.
#[repr(C)]
pub struct dh_heap_t {
    _private: [u8; 0],
}

pub type dh_on_error_t = c_int;
pub const DH_ON_ERROR_IGNORE: dh_on_error_t = 0;
pub const DH_ON_ERROR_WARN: dh_on_error_t = 1;
pub const DH_ON_ERROR_ABORT: dh_on_error_t = 2;
pub const DH_ON_ERROR_CALLBACK: dh_on_error_t = 3;

pub type dh_error_code_t = c_int;
pub const DH_ERR_NONE: dh_error_code_t = 0;
pub const DH_ERR_DOUBLE_FREE: dh_error_code_t = 1;
pub const DH_ERR_NOT_A_BLOCK: dh_error_code_t = 2;
pub const DH_ERR_FOREIGN: dh_error_code_t = 3;
pub const DH_ERR_MISALIGNED: dh_error_code_t = 4;
pub const DH_ERR_WRONG_HEAP: dh_error_code_t = 5;
pub const DH_ERR_COUNT: usize = 6;
pub const DH_ERR_CORRUPTED: dh_error_code_t = 6;

#[repr(C)]
pub struct dh_error_t {
    pub call: *const c_char,
    pub ptr: *const c_void,
    pub code: dh_error_code_t,
    pub size_class: c_int,
    pub message: *const c_char,
}

pub type dh_error_fn = Option<unsafe extern "C" fn(err: *const dh_error_t, user: *mut c_void)>;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct dh_config_t {
    pub struct_size: u32,
    pub version: u32,
    pub reserve: u64,
    pub base: usize,
    pub on_error: dh_on_error_t,
    pub error_callback: dh_error_fn,
    pub error_user: *mut c_void,
    pub classes: c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct dh_handle_t {
    pub id: u64,
}

pub const DH_HANDLE_NULL: dh_handle_t = dh_handle_t { id: 0 };

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct dh_class_stats_t {
    pub size: u64,
    pub allocs: u64,
    pub frees: u64,
    pub live: u64,
    pub free: u64,
    pub carved: u64,
    pub spans: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct dh_stats_t {
    pub struct_size: u32,
    pub version: u32,
    pub alloc_count: u64,
    pub free_count: u64,
    pub live_count: u64,
    pub total_blocks: u64,
    pub storage_bytes: u64,
    pub free_block_count: u64,
    pub live_bytes: u64,
    pub peak_live_bytes: u64,
    pub requested_bytes: u64,
    pub committed_bytes: u64,
    pub reserved_bytes: u64,
    pub failed_allocs: u64,
    pub large_allocs: u64,
    pub large_frees: u64,
    pub large_live_count: u64,
    pub large_live_bytes: u64,
    pub large_free_count: u64,
    pub large_free_bytes: u64,
    pub rejected_frees: u64,
    pub rejected_by_code: [u64; DH_ERR_COUNT],
    pub rejected_handle_frees: u64,
    pub classes: [dh_class_stats_t; DH_NUM_CLASSES],
    pub corruptions: u64,
    pub abandoned_blocks: u64,
    pub abandoned_bytes: u64,
    pub class_set: u32,
    pub class_count: u32,
    pub by_class: [dh_class_stats_t; DH_CLASSES_MAX],
}

// By hand: the standard library derives Default for arrays of at most 32.
impl Default for dh_stats_t {
    fn default() -> Self {
        // every field is an integer: all zero is the default
        unsafe { core::mem::zeroed() }
    }
}

pub type dh_check_t = c_int;
pub const DH_CHECK_OK: dh_check_t = 0;

#[repr(C)]
pub struct dh_block_info_t {
    pub ptr: *mut c_void,
    pub size: usize,
    pub size_class: c_int,
    pub live: bool,
}

/// Opaque snapshot (dh_heap_snapshot).
#[repr(C)]
pub struct dh_snapshot_t {
    _private: [u8; 0],
}

pub const DH_IMAGE_FORMAT: u32 = 1;
pub const DH_OPEN_PRIVATE: u32 = 1;
pub const DH_OPEN_SHARED: u32 = 2;
pub const DH_OPEN_VERIFY: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct dh_image_info_t {
    pub struct_size: u32,
    pub format: u32,
    pub layout: u32,
    pub sealed: u32,
    pub data_hashed: u32,
    pub class_count: u32,
    pub class_sizes: [u32; 64],
    pub library_version: u64,
    pub base: u64,
    pub reserve: u64,
    pub file_bytes: u64,
    pub committed_bytes: u64,
    pub storage_bytes: u64,
    pub live_count: u64,
    pub live_bytes: u64,
    pub root: u64,
}

pub type dh_visit_fn = Option<unsafe extern "C" fn(block: *const dh_block_info_t, user: *mut c_void) -> bool>;
pub type dh_stack_fn = Option<unsafe extern "C" fn(frames: *mut *mut c_void, max: c_int) -> c_int>;

extern "C" {
    pub fn dh_version() -> u32;
    pub fn dh_class_size(c: c_int) -> usize;
    pub fn dh_size_class(n: usize) -> c_int;
    pub fn dh_class_set_of(set: c_int, n: usize) -> c_int;
    pub fn dh_class_set_size(set: c_int, c: c_int) -> usize;
    pub fn dh_heap_class_set(heap: *const dh_heap_t) -> c_int;

    pub fn dh_config_init(cfg: *mut dh_config_t);
    pub fn dh_heap_create(cfg: *const dh_config_t) -> *mut dh_heap_t;
    pub fn dh_heap_destroy(heap: *mut dh_heap_t);
    pub fn dh_heap_reset(heap: *mut dh_heap_t) -> bool;
    pub fn dh_heap_of(ptr: *const c_void) -> *mut dh_heap_t;
    pub fn dh_heap_base(heap: *const dh_heap_t) -> usize;

    pub fn dh_heap_malloc(heap: *mut dh_heap_t, n: usize) -> *mut c_void;
    pub fn dh_heap_calloc(heap: *mut dh_heap_t, count: usize, size: usize) -> *mut c_void;
    pub fn dh_heap_realloc(heap: *mut dh_heap_t, ptr: *mut c_void, n: usize) -> *mut c_void;
    pub fn dh_heap_aligned_alloc(heap: *mut dh_heap_t, align: usize, n: usize) -> *mut c_void;
    /// The one-argument `dh_free(ptr)` of the header.
    pub fn dh_free(ptr: *mut c_void);
    pub fn dh_heap_free(heap: *mut dh_heap_t, ptr: *mut c_void);
    pub fn dh_usable_size(ptr: *const c_void) -> usize;

    pub fn dh_alloc(heap: *mut dh_heap_t, size: usize) -> dh_handle_t;
    /// The two-argument `dh_free(heap, handle)` of the header.
    pub fn dh_free_handle(heap: *mut dh_heap_t, handle: dh_handle_t);
    pub fn dh_get(heap: *const dh_heap_t, handle: dh_handle_t, len: *mut usize) -> *mut c_void;
    pub fn dh_write(heap: *mut dh_heap_t, handle: dh_handle_t, data: *const c_void, len: usize) -> bool;
    pub fn dh_handle_of(ptr: *const c_void) -> dh_handle_t;
    pub fn dh_ptr_of(heap: *const dh_heap_t, handle: dh_handle_t) -> *mut c_void;

    pub fn dh_heap_stats(heap: *const dh_heap_t, out: *mut dh_stats_t, out_size: usize) -> bool;
    pub fn dh_heap_check(heap: *const dh_heap_t) -> dh_check_t;
    pub fn dh_heap_walk(heap: *const dh_heap_t, visit: dh_visit_fn, user: *mut c_void) -> usize;

    pub fn dh_malloc(n: usize) -> *mut c_void;
    pub fn dh_calloc(count: usize, size: usize) -> *mut c_void;
    pub fn dh_realloc(ptr: *mut c_void, n: usize) -> *mut c_void;
    pub fn dh_aligned_alloc(align: usize, n: usize) -> *mut c_void;
    pub fn dh_process_stats(out: *mut dh_stats_t, out_size: usize) -> bool;
    pub fn dh_process_fingerprint() -> u64;
    pub fn dh_set_stack_hook(hook: dh_stack_fn);

    pub fn dh_set_default_error_policy(policy: dh_on_error_t, cb: dh_error_fn, user: *mut c_void) -> bool;
    pub fn dh_foreign_frees() -> u64;
    pub fn dh_error_name(code: dh_error_code_t) -> *const c_char;

    pub fn dh_heap_save(heap: *mut dh_heap_t, path: *const c_char) -> c_int;
    pub fn dh_heap_open(path: *const c_char, flags: u32) -> *mut dh_heap_t;
    pub fn dh_heap_set_root(heap: *mut dh_heap_t, root: *mut c_void);
    pub fn dh_heap_root(heap: *const dh_heap_t) -> *mut c_void;
    pub fn dh_image_info(path: *const c_char, out: *mut dh_image_info_t, out_size: usize) -> c_int;
    pub fn dh_heap_snapshot(heap: *mut dh_heap_t) -> *mut dh_snapshot_t;
    pub fn dh_heap_rollback(heap: *mut dh_heap_t, snap: *const dh_snapshot_t) -> bool;
    pub fn dh_snapshot_free(snap: *mut dh_snapshot_t);
}
