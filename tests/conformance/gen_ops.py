#!/usr/bin/env python3
"""gen_ops.py - random op scripts for the handle API, and their expected
answers from the original design's reference implementation.

  gen_ops.py script --seed S --ops N --maxlive M [--stale P]
      print one script (FORMAT.md's format) to standard output; the same
      arguments always give the same script.

  gen_ops.py regen --reference BINNED_ALLOC_RS [--dir DIR]
      write DIR/caseNN.ops and DIR/caseNN.expected for every case in CASES.
      The expected answers come from compiling reference_harness.rs together
      with the reference file (`rustc -O`, in a temporary directory) and
      running each script through it.  Only the answers are written here;
      the reference's code never enters the repository.

  gen_ops.py check --reference BINNED_ALLOC_RS [--dir DIR]
      answer every DIR/case*.ops with the harness and compare with
      case*.expected byte for byte (the harness itself is checked this way
      against the cases that did not come from this script).

The generator keeps a model of the reference allocator (block indices,
per-class LIFO free lists, which allocation ordinals alias which block) for
one reason: a read must only ask for bytes that a write defined since the
block was last handed out, because what a reused block still holds is not
part of the contract (detheap clears the first 8 bytes, the reference keeps
them).  The model is never used to compute answers.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

CLASS_SIZES = [16, 32, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192,
               16384, 65536]
MAX_SIZE = CLASS_SIZES[-1]

# The cases this script produced (name, seed, ops, maxlive, stale): a mix
# of sizes, from a short script to 50,000 operations and a few thousand
# live blocks.  Changing a row changes that case's files on regeneration.
CASES = [
    ("case09", 109, 200, 10, 0.10),
    ("case10", 110, 2000, 60, 0.08),
    ("case11", 111, 10000, 400, 0.05),
    ("case12", 112, 50000, 3000, 0.04),
    ("case13", 113, 20000, 1500, 0.03),
    ("case14", 114, 5000, 8, 0.20),
]


def class_of(n):
    for c, s in enumerate(CLASS_SIZES):
        if n <= s:
            return c
    raise ValueError("size %d is above the largest class" % n)


# Every class edge: 0, 1, and s - 1, s, s + 1 for each class size s.
EDGE_SIZES = sorted({0, 1} | {x for s in CLASS_SIZES
                              for x in (s - 1, s, s + 1) if x <= MAX_SIZE})


def random_size(rng):
    r = rng.random()
    if r < 0.25:
        return rng.choice(EDGE_SIZES)
    if r < 0.70:
        return rng.randint(0, 256)
    if r < 0.90:
        return rng.randint(257, 4096)
    if r < 0.97:
        return rng.randint(4097, 16384)
    return rng.randint(16385, MAX_SIZE)


class Model:
    """Which block each allocation ordinal names, and what is defined."""

    def __init__(self):
        self.cls = []       # block -> class
        self.in_use = []    # block -> bool
        self.defined = []   # block -> bytes defined since handed out
        self.aliases = []   # block -> allocation ordinals naming it
        self.free = [[] for _ in CLASS_SIZES]  # LIFO free lists
        self.handles = []   # ordinal -> block
        self.live = []      # live blocks, in no particular order
        self.live_pos = {}  # block -> index in self.live

    def alloc(self, size):
        c = class_of(size)
        if self.free[c]:
            b = self.free[c].pop()
            self.in_use[b] = True
        else:
            b = len(self.cls)
            self.cls.append(c)
            self.in_use.append(True)
            self.defined.append(0)
            self.aliases.append([])
        self.defined[b] = 0
        self.aliases[b].append(len(self.handles))
        self.handles.append(b)
        self.live_pos[b] = len(self.live)
        self.live.append(b)
        return b

    def free_block(self, b):
        if not self.in_use[b]:
            return
        self.in_use[b] = False
        self.free[self.cls[b]].append(b)
        i = self.live_pos.pop(b)
        last = self.live.pop()
        if last != b:
            self.live[i] = last
            self.live_pos[last] = i

    def write(self, b, n):
        if self.in_use[b]:
            self.defined[b] = max(self.defined[b],
                                  min(n, CLASS_SIZES[self.cls[b]]))

    def size(self, b):
        return CLASS_SIZES[self.cls[b]]


def generate(seed, nops, maxlive, stale):
    """Return the lines of one script."""
    rng = random.Random(seed)
    m = Model()
    out = ["# seed=%d ops=%d maxlive=%d stale=%g (gen_ops.py)"
           % (seed, nops, maxlive, stale)]
    # The live set swings between a low and a high target, so that free
    # lists fill up and drain again (LIFO reuse at every depth).
    target = rng.randint(1, maxlive)
    count = 0

    def emit(line):
        nonlocal count
        out.append(line)
        count += 1

    def name(b):
        # Mostly the newest ordinal of the block; sometimes an older one
        # that aliases the block since it was handed out again.
        al = m.aliases[b]
        return al[-1] if rng.random() < 0.85 else rng.choice(al)

    def write(k, b):
        size = m.size(b)
        n = rng.choice([size, rng.randint(0, size), rng.randint(0, 16),
                        size + rng.randint(1, 64)])
        emit("w %d %d %d" % (k, n, rng.randint(0, 255)))
        m.write(b, n)

    def read(k, b):
        if m.in_use[b]:
            d = m.defined[b]
            n = rng.choice([d, rng.randint(0, d)])
        else:
            n = rng.randint(0, m.size(b) + 16)
        emit("r %d %d" % (k, n))

    while count < nops:
        live = len(m.live)
        if live >= target:
            target = rng.randint(0, max(0, live - 1)) if rng.random() < 0.5 \
                else rng.randint(live, maxlive)
        growing = live < target
        r = rng.random()
        if r < stale and m.handles:
            # Misuse through any ordinal: freed, reused or live.
            k = rng.randrange(len(m.handles))
            b = m.handles[k]
            what = rng.random()
            if what < 0.4:
                emit("f %d" % k)
                m.free_block(b)
            elif what < 0.7:
                write(k, b)
            else:
                read(k, b)
        elif r < stale + 0.02:
            emit("s")
        elif live == 0 or (growing and r < 0.55) or (not growing and r < 0.25):
            if live >= maxlive:
                continue
            size = random_size(rng)
            b = m.alloc(size)
            emit("a %d" % size)
            if rng.random() < 0.8 and count < nops:
                write(len(m.handles) - 1, b)
        elif r < 0.75:
            # Free: often the newest live block (LIFO patterns), else any.
            b = m.live[-1] if rng.random() < 0.4 else rng.choice(m.live)
            emit("f %d" % name(b))
            m.free_block(b)
        elif r < 0.87:
            b = rng.choice(m.live)
            read(name(b), b)
        else:
            b = rng.choice(m.live)
            write(name(b), b)
    return out


def build_harness(reference, workdir):
    here = os.path.dirname(os.path.abspath(__file__))
    shutil.copy(os.path.join(here, "reference_harness.rs"),
                os.path.join(workdir, "main.rs"))
    shutil.copy(reference, os.path.join(workdir, "binned_alloc.rs"))
    exe = os.path.join(workdir, "harness")
    subprocess.run(["rustc", "-O", "--edition", "2021", "-A", "warnings",
                    "-o", exe, os.path.join(workdir, "main.rs")], check=True)
    return exe


def regen(reference, directory):
    with tempfile.TemporaryDirectory() as work:
        exe = build_harness(reference, work)
        for name, seed, nops, maxlive, stale in CASES:
            script = "\n".join(generate(seed, nops, maxlive, stale)) + "\n"
            answer = subprocess.run([exe], input=script.encode(), check=True,
                                    stdout=subprocess.PIPE).stdout
            with open(os.path.join(directory, name + ".ops"), "w") as f:
                f.write(script)
            with open(os.path.join(directory, name + ".expected"), "wb") as f:
                f.write(answer)
            print("%s: %d ops, %d answers" % (name, nops,
                                             answer.count(b"\n")))


def check(reference, directory):
    bad = 0
    names = sorted(f[:-4] for f in os.listdir(directory)
                   if f.startswith("case") and f.endswith(".ops"))
    with tempfile.TemporaryDirectory() as work:
        exe = build_harness(reference, work)
        for name in names:
            with open(os.path.join(directory, name + ".ops"), "rb") as f:
                answer = subprocess.run([exe], stdin=f, check=True,
                                        stdout=subprocess.PIPE).stdout
            with open(os.path.join(directory, name + ".expected"), "rb") as f:
                same = f.read() == answer
            print("%s: %s" % (name, "same" if same else "DIFFERENT"))
            bad += not same
    print("%d of %d cases answered identically" % (len(names) - bad,
                                                   len(names)))
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("script", help="print one script")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--ops", type=int, required=True)
    s.add_argument("--maxlive", type=int, required=True)
    s.add_argument("--stale", type=float, default=0.05)
    g = sub.add_parser("regen", help="rewrite the generated cases")
    g.add_argument("--reference", required=True,
                   help="the reference implementation (binned_alloc.rs)")
    g.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)))
    c = sub.add_parser("check", help="compare the harness with every case")
    c.add_argument("--reference", required=True)
    c.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)))
    a = p.parse_args()
    if a.cmd == "script":
        sys.stdout.write("\n".join(generate(a.seed, a.ops, a.maxlive,
                                            a.stale)) + "\n")
    elif a.cmd == "regen":
        regen(a.reference, a.dir)
    else:
        sys.exit(check(a.reference, a.dir))


if __name__ == "__main__":
    main()
