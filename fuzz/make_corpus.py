#!/usr/bin/env python3
"""make_corpus.py - writes the fuzzers' seed corpora into fuzz/corpus/.

The seeds are small, and a pure function of this script: a few
hand-written programs per target (in each fuzzer's input language, see the
comment at the top of fuzz_*.c) and a few pseudo-random ones from a fixed
linear congruential generator.  Run it from anywhere; it rewrites the files.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def lcg_bytes(seed, n):
    out = bytearray()
    x = seed
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append(x >> 56)
    return bytes(out)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# fuzz_handle: op byte (% 12), then its arguments.
ALLOC_CLASS = 11  # + class index byte


def h_alloc_class(c):
    return bytes([ALLOC_CLASS, c])


def h_free(i):
    return bytes([4]) + struct.pack("<H", i)


def h_write(i, how, seed):
    return bytes([8, how, seed]) + struct.pack("<H", i)


def h_read(i):
    return bytes([10]) + struct.pack("<H", i) + bytes([0])


lifo = b"".join(h_alloc_class(1) for _ in range(3))
lifo += h_free(0) + h_free(1) + h_free(2)
lifo += b"".join(h_alloc_class(1) for _ in range(3)) + h_read(0) + h_read(2)
write("fuzz_handle", "lifo_reuse", lifo)
mixed = b"".join(h_alloc_class(c) for c in range(13))
mixed += h_write(3, 1, 7) + h_write(0, 2, 9) + h_read(3) + h_read(0)
mixed += bytes([6]) + struct.pack("<H", 5)          # double free
mixed += bytes([7, 3]) + struct.pack("<I", 123457)  # never-issued handle
mixed += h_alloc_class(5) + h_read(5)
write("fuzz_handle", "all_classes_write_double_free", mixed)
large = bytes([0, 7]) + struct.pack("<H", 1000)     # alloc 65537 + 8000
large += bytes([0, 7]) + struct.pack("<H", 9)
large += bytes([0x89, 1, 0x44, 0])                  # write the large block
large += bytes([0x84, 0]) + bytes([0, 5, 12]) + bytes([0x84, 0])
write("fuzz_handle", "large_and_boundaries", large)
for k in range(3):
    write("fuzz_handle", "random_%d" % k, lcg_bytes(100 + k, 160))

# fuzz_pointer: op byte (% 10), then its arguments.
ptr = bytes([0, 0, 40, 0, 1, 200, 2, 1, 10, 0, 10, 0])   # malloc, calloc
ptr += bytes([3, 6, 0, 100])                             # aligned 64
ptr += bytes([4, 0, 4]) + struct.pack("<H", 3000) + bytes([1])  # realloc
ptr += bytes([8, 7, 0])                                  # free twice
ptr += bytes([8, 1, 0]) + struct.pack("<H", 1)           # interior
ptr += bytes([8, 2, 0, 3, 0])                            # misaligned
ptr += bytes([8, 3, 5, 8, 3, 4])                         # header, top
ptr += bytes([8, 4, 9, 8, 20, 9])                        # foreign
ptr += bytes([7, 0, 64, 8, 5, 0])                        # wrong heap
ptr += bytes([8, 0, 0, 8, 6, 0, 5, 0x80])                # stale, NULL
write("fuzz_pointer", "every_call_and_misuse", ptr)
big = bytes([0, 7]) + struct.pack("<H", 3000)            # large
big += bytes([3, 20, 0, 16])                             # aligned 1 MiB
big += bytes([3, 0x80 | 5, 0, 8])                        # bad alignment
big += bytes([2, 0, 0, 0, 0, 0])                         # calloc overflow
big += bytes([8, 0, 1, 5, 0, 5, 0])
write("fuzz_pointer", "large_aligned_bad_alignment", big)
for k in range(3):
    write("fuzz_pointer", "random_%d" % k, lcg_bytes(200 + k, 160))

# fuzz_override: op byte (% 10), then its arguments.
ov = bytes([0, 0, 40])                                   # malloc(40)
ov += bytes([1, 3]) + struct.pack("<H", 512)             # malloc(512)
ov += bytes([2, 1]) + struct.pack("<HH", 10, 24)         # calloc(10, 24)
ov += bytes([2, 0, 0, 0, 0, 0])                          # calloc overflow
ov += bytes([3, 6, 0, 100])                              # posix_memalign 64
ov += bytes([3, 0x82, 0, 10])                            # bad alignment
ov += bytes([4, 0, 12, 4]) + struct.pack("<H", 16)       # aligned_alloc 4K
ov += bytes([4, 1, 0x83, 0, 50])                         # memalign, rounded
ov += bytes([4, 2, 0, 0, 200, 4, 3, 0, 0, 0])            # valloc, pvalloc(0)
ov += bytes([5, 4, 4]) + struct.pack("<H", 3000) + bytes([0])  # realloc
ov += bytes([5, 0, 0, 100])                              # realloc(NULL, 100)
ov += bytes([5, 1, 0, 10, 1])                            # realloc(p, 0)
ov += bytes([5, 2, 0, 10, 2])                            # reallocarray overflow
ov += bytes([5, 3, 0, 77, 0])                            # reallocarray
ov += bytes([8, 0, 9, 1, 6, 2, 7, 0xff])                 # reuse, sizes, frees
write("fuzz_override", "every_call", ov)
big = bytes([0, 7]) + struct.pack("<H", 0)               # malloc(65537)
big += bytes([0, 7 + 8 * 3]) + struct.pack("<H", 4096)   # 65537 + 16 pages
big += bytes([3, 20, 7]) + struct.pack("<H", 256)        # aligned 1 MiB
big += bytes([5, 4, 3]) + struct.pack("<H", 1000) + bytes([0])  # large -> small
big += bytes([5, 4, 7]) + struct.pack("<H", 9) + bytes([1])     # small -> large
big += bytes([9, 0, 6, 1, 9, 0, 0, 6, 0])
write("fuzz_override", "large_and_aligned", big)
lifo = b"".join(bytes([0, 5 + 8 * c]) for c in range(13))    # each class
lifo += b"".join(bytes([8, c]) for c in range(13))           # freed, reused
lifo += b"".join(bytes([6, 0]) for _ in range(6)) + bytes([8, 3, 8, 1, 9, 2])
write("fuzz_override", "lifo_every_class", lifo)
for k in range(3):
    write("fuzz_override", "random_%d" % k, lcg_bytes(400 + k, 200))

# fuzz_options: even first byte = a size string, odd = option values.
for i, s in enumerate([b"0", b"64G", b"0x1f", b"1KiB", b"16tb",
                       b"18446744073709551615", b"0x10000000000000000",
                       b"17179869184T", b"12Q"]):
    write("fuzz_options", "size_%d" % i, b"\x00" + s)
env = b"\n".join([b"0x200000000000", b"64G", b"warn", b"json", b"t.%p",
                  b"1", b"stats.txt", b"owner"])
write("fuzz_options", "env_all_good", b"\x01" + env)
env = b"\n".join([b"0x1234", b"1K", b"loud", b"maybe", b"", b"2", b"",
                  b"mine"])
write("fuzz_options", "env_all_bad", b"\x01" + env)
write("fuzz_options", "env_some_unset", b"\x01\xff\n4T\n\xff\nyes\n\xff")

# fuzz_trace: a valid trace with one record of each kind, and damaged ones.


def rec(op, a=0, b=0, c=0, flags=0, extra=0, slot=0):
    return struct.pack("<BBHIQQQ", op, flags, extra, slot, a, b, c)


hdr = b"DHTRACE1" + struct.pack("<IIQQQQQQ", 1, 32, 4242, 1, 0x200000000000,
                                64 << 30, 1, 0)
body = rec(8, 0x1234, 0, 0)
body += rec(1, 100, 0, 0x200000410000)
body += rec(2, 4, 25, 0x200000410070)
body += rec(3, 300, 0x200000410000, 0x200000420000)
body += rec(9, extra=3) + struct.pack("<QQQQ", 0x401000, 0x401100, 0x401200, 0)
body += rec(4, 112, 0x200000410070, 0)
body += rec(5, 64, 4096, 0x200000500000, flags=0)
body += rec(1, 1 << 50, 0, 0, flags=1)
text = b"00400000-00401000 r-xp 0 0:0 0 /bin/x\n"
body += rec(10, len(text)) + text + b" " * (-len(text) % 32)
body += rec(11, 9, 0xabcdef, 0x123456)
write("fuzz_trace", "valid_every_op", hdr + body)
write("fuzz_trace", "header_only", hdr)
write("fuzz_trace", "truncated_record", hdr + body[:50])
write("fuzz_trace", "bad_op", hdr + rec(77))
write("fuzz_trace", "frames_past_end", hdr + rec(9, extra=9))

# fuzz_corrupt: op byte (% 4): 0 malloc, 1 free, 2 realloc, 3 write a word
# into a freed block (see the comment at the top of fuzz_corrupt.c).
def c_malloc(size16, shift=0):
    return bytes([0]) + struct.pack("<H", size16) + bytes([shift])


def c_write(dead, off, kind, x):
    return bytes([3, dead, off, kind]) + struct.pack("<I", x)


# four 48-byte blocks, three freed, the newest freed one's link aimed at a
# live block (kind 0), a global (2), garbage (3), then more mallocs
for kind in range(6):
    seq = c_malloc(47) * 4 + bytes([1, 1, 1, 1, 1, 0])
    seq += c_write(0, 0, kind, 12345) + c_malloc(47) * 4
    write("fuzz_corrupt", "class_link_kind_%d" % kind, seq)
# large blocks: two freed, the node words of one overwritten, then more
big = c_malloc(0xffff, 4) * 3 + c_malloc(20000, 2) + c_malloc(20000, 2)
big += bytes([1, 1, 1, 3])
for off in range(4):
    big += c_write(0, off, 3, 777 + off)
big += c_malloc(0xffff, 4) * 3 + c_malloc(300) * 3
write("fuzz_corrupt", "large_node_garbage", big)
for k in range(3):
    write("fuzz_corrupt", "random_%d" % k, lcg_bytes(300 + k, 200))

# fuzz_image: a mode byte, then patches REGION8 OFF16 XOR8 of a valid
# image made by the target itself (see the comment at the top of
# fuzz_image.c); mode % 4: 0 raw file, 1 patched, 2 patched with the
# checksums made right again, 3 the same and cut; mode & 4: DH_OPEN_VERIFY.
def patch(region, off, x):
    return bytes([region]) + struct.pack("<H", off) + bytes([x])


write("fuzz_image", "unpatched", bytes([1]))
write("fuzz_image", "unpatched_verify", bytes([5]))
write("fuzz_image", "raw_magic_only", bytes([0]) + b"DHIMAGE\0" + bytes(64))
write("fuzz_image", "header_byte", bytes([1]) + patch(0, 40, 0x04))
# the heap header's top (offset 56), a bin's list head (120), the state
# map and the data, each with the checksums right again
write("fuzz_image", "heap_top_fixed", bytes([2]) + patch(1, 56, 0x10))
write("fuzz_image", "bin_head_fixed", bytes([2]) + patch(1, 120, 0x30))
write("fuzz_image", "state_fixed", bytes([2]) + patch(2, 4200, 0x41))
write("fuzz_image", "data_fixed_verify", bytes([6]) + patch(3, 16, 0xff))
write("fuzz_image", "cut_fixed", bytes([3]) + struct.pack("<I", 9000))
write("fuzz_image", "random_0", bytes([2]) + lcg_bytes(901, 60))
