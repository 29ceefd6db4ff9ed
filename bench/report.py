#!/usr/bin/env python3
"""report.py - turn the result files of scripts/bench.sh into the report.

    report.py RESULTS_DIR OUT_MD OUT_PNG

RESULTS_DIR holds tab-separated files written by bench.sh (micro.tsv,
threads.tsv, ir.tsv, programs.tsv, rss.tsv, handle.tsv, image.tsv, meta.tsv,
allocators.tsv, commands.tsv, notes.txt); any of them may be missing or
empty, and every table then says what was not measured instead of failing.
allocators.tsv lists every row in run order, with a third column that is
"reference" for a row that is no real allocator (ideal-lifo): it appears in
the microbenchmark and instruction-count tables only.

Ratios are always taken between figures of the same round (the allocators
ran interleaved within it) and summarised as min/median/max over rounds.
The plot is drawn by gnuplot when it is installed.
"""
import math
import os
import subprocess
import sys
from collections import defaultdict

SUBJECT = "detheap"
BASELINE = "mimalloc"
# The reference row (bench/ideal_lifo.c): an ideal LIFO free list behind a
# call, run by bench.sh for the microbenchmarks and the instruction count
# only, and marked "reference" in allocators.tsv.
REFERENCE = "ideal-lifo"
REFERENCE_DESC = ("`bench/ideal_lifo.c`, not an allocator but the reference row: "
                  "an ideal LIFO free list behind a call (a thread-local list per "
                  "size class, 16-byte classes to 1 KiB then powers of two to 256 MiB, bump "
                  "allocation from one sub-region per class, the class found "
                  "from the address; no header, no checks). It runs in the "
                  "microbenchmarks and the instruction count only.")
# Single-thread targets: detheap's geometric mean against the reference and
# against mimalloc, and its instructions per pair on pair_live.
REF_TARGET = 1.10
MICRO_TARGET = 0.75
PROG_RSS_TARGET = 1.10   # peak RSS, detheap / glibc, on each real program
PROG_RSS_GEOMEAN = 1.0   # and their geometric mean
REALLOC_TARGET = 1.5     # the realloc microbenchmark, detheap / glibc
IR_TARGET = 56
THREAD_DESC = {
    "larson": "each thread keeps 1000 live blocks of 16..1024 bytes and replaces "
              "one at random per operation; one block in 16 is handed to the other "
              "thread, which frees it.",
    "prodcons": "one thread allocates 16..1024-byte blocks and passes them through "
                "a lock-free queue, the other frees them.",
    "larson-chain": "Larson's server benchmark as mimalloc-bench runs it "
                    "(`larson-sized 5 8 1000 5000 100 4141 2`, with a fixed number "
                    "of generations instead of 5 seconds): 2 chains of threads, each "
                    "with 5000 live blocks of 8..1000 bytes; a thread replaces a "
                    "random block 500,000 times, then creates its successor "
                    "(detached), hands it the blocks and exits, so every thread "
                    "frees blocks that ended threads allocated.",
    "xmalloc": "like xmalloc-test: one thread allocates 64-byte blocks in batches "
               "of 512 (the batch record is malloc'd too) and hands the batches to "
               "the other, which frees them; at most 8 batches queued.",
    "mstress": "like mimalloc-bench's mstress: 20 phases of 2 new threads (joined "
               "at the end, work split 60/40), each replacing, freeing and "
               "swapping blocks of 16..256 bytes (1 in 32 up to 4 KiB, 1 in 1024 "
               "of 64 KiB..1 MiB) in 2000 slots and 1000 transfer slots shared by "
               "all threads; a quarter of a thread's blocks survive into the next "
               "phase, freed by the other thread. Throughput counts its mallocs.",
}
# Two-thread targets: default-mode detheap against glibc's peak RSS and
# mimalloc's throughput, per benchmark (throughput only on SPEED_BENCHES).
RSS_TARGET = 3
SPEED_TARGET = 0.8
SPEED_BENCHES = ["larson", "larson-chain", "prodcons", "xmalloc"]
MICRO_DESC = {
    "pair": "malloc(64)+free in a loop",
    "pair_live": "the same with one 64-byte block held live",
    "lifo": "LIFO batches of 100 blocks of 16..1024 bytes",
    "ws4k": "10k-slot random working set, 16..4096 bytes",
    "ws64k": "10k-slot random working set, 16..65536 bytes",
    "realloc": "realloc growth by 1/8 + 16 bytes up to 64 KiB (per call)",
    "calloc": "calloc of 16..4096 bytes + free",
}


def read_tsv(res, name):
    path = os.path.join(res, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def median(v):
    v = sorted(v)
    n = len(v)
    if n == 0:
        return None
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def geomean(v):
    v = [x for x in v if x and x > 0]
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else None


def fmt(x, digits=2):
    if x is None:
        return "–"
    if abs(x) >= 1000:
        return "{:,.0f}".format(x)
    return "{:.{}f}".format(x, digits)


class Series:
    """value[bench][alloc][round] for one kind of measurement."""

    def __init__(self):
        self.v = defaultdict(lambda: defaultdict(dict))

    def add(self, bench, alloc, rnd, value):
        self.v[bench][alloc][rnd] = value

    def benches(self):
        return list(self.v.keys())

    def med(self, bench, alloc):
        return median(list(self.v[bench].get(alloc, {}).values()))

    def ratios(self, bench, a, b):
        """a/b for each round where both were measured."""
        ra, rb = self.v[bench].get(a, {}), self.v[bench].get(b, {})
        return [ra[r] / rb[r] for r in ra if r in rb and rb[r] > 0]

    def ratio_summary(self, bench, a, b):
        r = self.ratios(bench, a, b)
        return (min(r), median(r), max(r)) if r else None


def ratio_cell(s):
    if s is None:
        return "–"
    lo, med, hi = s
    return "{:.2f} ({:.2f}–{:.2f})".format(med, lo, hi)


class Report:
    def __init__(self, res, out_md, out_png):
        self.res, self.out_md, self.out_png = res, out_md, out_png
        self.meta = {}
        self.pkgs = []
        for row in read_tsv(res, "meta.tsv"):
            if row[0] == "pkg":
                self.pkgs.append(row[1])
            elif len(row) > 1:
                self.meta[row[0]] = row[1]
        rows = read_tsv(res, "allocators.tsv")
        # Every row in run order (the microbenchmarks and the instruction
        # count); allocs and peers leave out the reference rows, which the
        # thread benchmarks and the real programs do not run.
        self.micro_allocs = [r[0] for r in rows]
        self.refs = [r[0] for r in rows if len(r) > 2 and r[2] == "reference"]
        self.allocs = [a for a in self.micro_allocs if a not in self.refs]
        self.libs = {r[0]: r[1] for r in rows}
        self.has_subject = SUBJECT in self.allocs
        self.peers = [a for a in self.allocs if a != SUBJECT]
        self.micro_peers = [a for a in self.micro_allocs if a != SUBJECT]
        self.notes = []
        if os.path.exists(os.path.join(res, "notes.txt")):
            self.notes = [l.strip() for l in open(os.path.join(res, "notes.txt")) if l.strip()]
        self.lines = []
        self.targets = []  # (target, figure, verdict)

    def w(self, s=""):
        self.lines.append(s)

    def table(self, header, rows):
        self.w("| " + " | ".join(header) + " |")
        self.w("|" + "|".join(" --- " for _ in header) + "|")
        for r in rows:
            self.w("| " + " | ".join(r) + " |")
        self.w()

    def ratio_table(self, series, benches, what, label=lambda b: "`%s`" % b,
                    subject=SUBJECT, peers=None):
        """subject / each peer, median (min–max) over rounds."""
        if not self.has_subject:
            self.w("*%s, detheap / peer: detheap was not measured (see Notes).*" % what)
            self.w()
            return
        peers = self.peers if peers is None else peers
        self.w("%s, %s / peer, median (min–max) over rounds:" % (what, subject))
        self.w()
        rows = [[label(b)] + [ratio_cell(series.ratio_summary(b, subject, p))
                              for p in peers] for b in benches]
        self.table(["benchmark"] + [subject + " / " + self.col(p) for p in peers],
                   rows)

    def col(self, a):
        """A column or row heading for allocator a."""
        return a + " (reference)" if a in self.refs else a

    # ---- sections ------------------------------------------------------

    def machine(self):
        m = self.meta
        self.w("# Benchmarks")
        self.w()
        self.w("Written by `make bench` (`scripts/bench.sh %s`) in %s mode on %s; "
               "the run took %s s. Do not edit by hand: rerun the command."
               % (m.get("build", "build"), m.get("mode", "?"), m.get("date", "?"),
                  m.get("seconds", "?")))
        if m.get("mode") == "quick":
            self.w()
            self.w("**Quick mode** (`BENCH_QUICK=1`): one round with small sizes, "
                   "to check the harness. The figures are indicative only.")
        self.w()
        self.table(["machine", ""], [
            ["CPU", m.get("cpu", "?")], ["cores", m.get("cores", "?")],
            ["RAM", m.get("ram", "?")], ["kernel", m.get("kernel", "?")],
            ["distribution", m.get("distro", "?")],
            ["compiler", m.get("cc", "?")],
            ["detheap build type", m.get("build_type") if m.get("build_type")
             not in (None, "", "default") else "RelWithDebInfo (the project's default)"],
            ["tools", "; ".join(x for x in (m.get("hyperfine"), m.get("valgrind"),
                                           m.get("rustc")) if x)],
            ["packages", "; ".join(self.pkgs)],
        ])
        self.w("Allocators, in the order they run within each round (all but "
               "glibc through `LD_PRELOAD`):")
        self.w()
        self.table(["allocator", "library"],
                   [[self.col(a), "`%s`" % self.libs[a]] for a in self.micro_allocs])
        for a in self.refs:
            if a == REFERENCE:
                self.w("%s: %s" % (a, REFERENCE_DESC))
                self.w()
        self.w("Each measurement runs the allocators one after the other (A B C D "
               "E, A B C D E, ...) for %s rounds (%s for the real programs); a "
               "ratio is taken between two allocators' figures of the same round "
               "and given as median (min–max) over the rounds."
               % (m.get("rounds", "?"), m.get("prog_rounds", "?")))
        self.w()

    def micro(self):
        s = Series()
        best = Series()
        for b, r, a, bst, med in read_tsv(self.res, "micro.tsv"):
            s.add(b, a, r, float(med))
            best.add(b, a, r, float(bst))
        self.micro_series = s
        self.w("## Single-thread microbenchmarks")
        self.w()
        self.w("Nanoseconds per malloc+free pair (realloc: per call); each "
               "program run times %s repetitions and reports their best and "
               "median; the table gives the median over rounds of the run "
               "medians, and the best of all. Lower is better."
               % self.meta.get("micro_reps", "?"))
        self.w()
        if REFERENCE in self.refs:
            self.w("The %s column is the reference row (see the allocators "
                   "above): detheap / %s is how far detheap is from an ideal "
                   "LIFO free list behind a call." % (REFERENCE, REFERENCE))
            self.w()
        benches = s.benches()
        if not benches:
            self.w("*Not measured.*")
            self.w()
            self.micro_targets(s, benches)
            return
        rows = []
        for b in benches:
            row = ["`%s`: %s" % (b, MICRO_DESC.get(b, ""))]
            for a in self.micro_allocs:
                mb = best.v[b].get(a, {})
                row.append("%s (best %s)" % (fmt(s.med(b, a)),
                                             fmt(min(mb.values())) if mb else "–"))
            rows.append(row)
        self.table(["benchmark"] + [self.col(a) for a in self.micro_allocs], rows)
        self.ratio_table(s, benches, "Time ratio", peers=self.micro_peers)
        self.micro_targets(s, benches)
        self.plot(s, benches)

    def micro_targets(self, s, benches):
        """The geometric means of detheap's median ratios to each row, and
        the targets against the reference row and mimalloc: met or not on
        the geometric mean, and not met when detheap failed a benchmark the
        other row ran."""
        ref_t = ("single-thread microbenchmarks: detheap <= %.2fx %s (geometric "
                 "mean of detheap / %s)" % (REF_TARGET, REFERENCE, REFERENCE))
        base_t = ("single-thread microbenchmarks: detheap <= %.2fx %s (geometric "
                  "mean of detheap / %s)" % (MICRO_TARGET, BASELINE, BASELINE))
        if not self.has_subject or not benches:
            for t in (ref_t, base_t):
                self.targets.append((t, "–", "not measured"))
            return
        med = {p: {b: (s.ratio_summary(b, SUBJECT, p) or (0, None, 0))[1]
                   for b in benches} for p in self.micro_peers}
        g = {p: geomean([m for m in med[p].values() if m is not None])
             for p in self.micro_peers}
        self.w("Geometric mean of the median ratios: " + ", ".join(
            "detheap / %s = %s" % (self.col(p), fmt(g[p])) for p in self.micro_peers)
            + ".")
        self.w()
        for peer, limit, title, per_bench in ((REFERENCE, REF_TARGET, ref_t, True),
                                              (BASELINE, MICRO_TARGET, base_t, False)):
            gv = g.get(peer)
            if gv is None:
                self.targets.append((title, "–", "not measured"))
                continue
            failed = [b for b in benches if med[peer][b] is None
                      and s.v[b].get(peer) and not s.v[b].get(SUBJECT)]
            missing = [b for b in benches if med[peer][b] is None and b not in failed]
            figure = fmt(gv) + "x"
            if per_bench:
                over = ["%s %sx" % (b, fmt(m)) for b, m in med[peer].items()
                        if m is not None and m > limit]
                figure += "; over %.2fx on: %s" % (limit, ", ".join(over) or "none")
            if failed:
                figure += "; detheap failed on: " + ", ".join(failed)
            if missing:
                figure += "; not measured on: " + ", ".join(missing)
            verdict = "not met" if failed else self.verdict(gv, lambda x: x <= limit)
            self.targets.append((title, figure, verdict))
        if "realloc" in benches:
            r = s.ratio_summary("realloc", SUBJECT, "glibc")
            self.targets.append((
                "realloc microbenchmark: detheap <= %gx glibc" % REALLOC_TARGET,
                fmt(r[1]) + "x" if r else "–",
                self.verdict(r[1] if r else None, lambda x: x <= REALLOC_TARGET)))

    def plot(self, s, benches):
        base = BASELINE if BASELINE in self.allocs else "glibc"
        series = [a for a in self.micro_allocs if a != base]
        if not series or not benches:
            return
        dat = os.path.join(self.res, "micro_ratios.dat")
        seen = []
        with open(dat, "w") as f:
            f.write("bench " + " ".join(series) + "\n")
            for b in benches:
                vals = []
                for a in series:
                    r = s.ratio_summary(b, a, base)
                    vals.append("%.4f" % r[1] if r else "NaN")
                    if r:
                        seen.append(r[1])
                f.write(b + " " + " ".join(vals) + "\n")
        gp = """set terminal pngcairo size 960,480 noenhanced font ",10"
set output '{png}'
set title 'Microbenchmarks: time / {base} (median over rounds; lower is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y 2
set yrange [{lo}:{hi}]
set ylabel 'time ratio (log scale)'
set grid ytics
set key outside right top
set xtics rotate by -20
plot '{dat}' using 2:xtic(1) title columnheader(2){more}, 1 with lines lc rgb 'black' dt 2 title '{base} = 1'
""".format(png=self.out_png, base=base, dat=dat,
           lo=2 ** math.floor(math.log2(min(seen + [0.5]) / 1.2)),
           hi=2 ** math.ceil(math.log2(max(seen + [2.0]) * 1.2)),
           more="".join(", '' using %d title columnheader(%d)" % (i + 2, i + 2)
                        for i in range(1, len(series))))
        try:
            subprocess.run(["gnuplot"], input=gp.encode(), check=True,
                           stderr=subprocess.PIPE)
        except (OSError, subprocess.CalledProcessError) as e:
            # pngcairo may be missing from a minimal gnuplot: try plain png.
            try:
                subprocess.run(["gnuplot"], input=gp.replace("pngcairo", "png").encode(),
                               check=True, stderr=subprocess.PIPE)
            except (OSError, subprocess.CalledProcessError):
                self.notes.append("the plot could not be drawn: %s" % e)
                return
        self.w("![microbenchmark ratios](%s)" % os.path.basename(self.out_png))
        self.w()

    def threads(self):
        ops, rss = Series(), Series()
        cols = []
        for b, r, a, o, k in read_tsv(self.res, "threads.tsv"):
            ops.add(b, a, r, float(o))
            rss.add(b, a, r, float(k))
            if a not in cols:
                cols.append(a)
        self.w("## Two threads")
        self.w()
        self.w("Throughput is malloc+free pairs per second of wall time over both "
               "threads (higher is better); peak RSS is the process's "
               "(`ru_maxrss`). The work is fixed, so every allocator does the same.")
        self.w()
        for b, desc in THREAD_DESC.items():
            self.w("- `%s`: %s" % (b, desc))
        self.w()
        self.w("detheap runs with its default `DETHEAP_REMOTE_FREE=keep` (a block "
               "freed by another thread joins the freeing thread's free lists, so "
               "every thread's addresses stay deterministic, but a pure consumer "
               "never hands memory back to its producer), and as `detheap-owner` "
               "with `DETHEAP_REMOTE_FREE=owner` (blocks go back to their heap; "
               "memory stays bounded, addresses depend on timing). The targets use "
               "the default.")
        self.w()
        benches = ops.benches()
        if not benches:
            self.w("*Not measured.*")
            self.w()
            self.thread_targets(ops, rss, [])
            return

        def cell(b, a):
            o, k = ops.med(b, a), rss.med(b, a)
            if o is None:
                return "failed (see Notes)"
            return "%s M/s, %s MiB" % (fmt(o / 1e6), fmt(k / 1024, 1))

        rows = [["`%s`" % b] + [cell(b, a) for a in cols] for b in benches]
        self.w("Median throughput and peak RSS over rounds:")
        self.w()
        self.table(["benchmark"] + cols, rows)
        self.thread_targets(ops, rss, benches)
        for subj in [c for c in cols if c.startswith(SUBJECT)] or [SUBJECT]:
            self.ratio_table(ops, benches, "Throughput ratio (higher is better)",
                             subject=subj)
            self.ratio_table(rss, benches, "Peak RSS ratio", subject=subj)

    def thread_targets(self, ops, rss, benches):
        """Two lines per benchmark, from this run's rounds: default-mode
        detheap's peak RSS / glibc's and throughput / mimalloc's."""
        rss_over, slow, figs = [], [], []
        missing = False
        lines = []
        for b in benches:
            for what, series, peer, target, ok in (
                    ("peak RSS, detheap / glibc", rss, "glibc", "<= %gx" % RSS_TARGET,
                     lambda x: x <= RSS_TARGET),
                    ("throughput, detheap / mimalloc", ops, BASELINE,
                     ">= %gx" % SPEED_TARGET if b in SPEED_BENCHES else "none",
                     (lambda x: x >= SPEED_TARGET) if b in SPEED_BENCHES else None)):
                # detheap was measured in this run but failed where the peer ran
                failed = (self.has_subject and not series.v[b].get(SUBJECT)
                          and bool(series.v[b].get(peer)))
                s = series.ratio_summary(b, SUBJECT, peer)
                if s is not None:
                    verdict = "met" if ok is None or ok(s[1]) else "not met"
                elif failed:
                    verdict = "not met"
                else:
                    verdict = "not measured"
                if ok is None:
                    verdict = "no target"
                elif verdict == "not measured":
                    missing = True
                elif verdict == "not met":
                    (rss_over if series is rss else slow).append(b)
                if series is ops and b in SPEED_BENCHES:
                    figs.append("%s %s" % (b, fmt(s[1]) + "x" if s else
                                           "failed" if failed else "–"))
                figure = ratio_cell(s) if s else (
                    "detheap failed (see Notes)" if failed else "–")
                lines.append(["`%s`" % b, what, figure, target, "**%s**" % verdict])
        if lines:
            self.w("Targets, from this run (default-mode detheap; the ratio of the "
                   "two allocators' figures in each round, median (min–max) over "
                   "rounds):")
            self.w()
            self.table(["benchmark", "ratio", "figure", "target", "verdict"], lines)
        if not self.has_subject or not benches:
            for t in ("two threads: peak RSS <= %gx glibc's on each" % RSS_TARGET,
                      "two threads: throughput >= %gx mimalloc's on %s"
                      % (SPEED_TARGET, ", ".join(SPEED_BENCHES))):
                self.targets.append((t, "–", "not measured"))
            return
        self.targets.append((
            "two threads: peak RSS <= %gx glibc's on each" % RSS_TARGET,
            "over on: " + (", ".join(rss_over) or "none"),
            "not met" if rss_over else "not measured" if missing else "met"))
        self.targets.append((
            "two threads: throughput >= %gx mimalloc's on %s"
            % (SPEED_TARGET, ", ".join(SPEED_BENCHES)),
            ", ".join(figs),
            "not met" if slow else "not measured" if missing else "met"))

    def instructions(self):
        rows = read_tsv(self.res, "ir.tsv")
        title = ("<= %d instructions per malloc+free pair of a small block "
                 "(`pair_live`)" % IR_TARGET)
        self.w("## Instructions per malloc+free pair")
        self.w()
        self.w("`valgrind --tool=callgrind` on `pair_live` (64-byte blocks, one held "
               "live): (Ir of a run with N pairs − Ir of a run with 0) / N, so "
               "start-up and exit are left out. Instruction counts do not depend "
               "on the machine's load, so one round suffices. The count includes "
               "the benchmark's own loop and the calls through the PLT, as the "
               "%s row shows: its malloc and free are about the least a "
               "size-class allocator can execute." % REFERENCE)
        self.w()
        if not rows:
            self.w("*Not measured.*")
            self.w()
            self.targets.append((title, "–", "not measured"))
            return
        per = {a: (int(n1) - int(n0)) / int(n) for a, n, n1, n0 in rows}
        ref = per.get(REFERENCE)
        table = []
        for a, n, n1, n0 in rows:
            table.append([self.col(a), n, "{:,}".format(int(n1)), "{:,}".format(int(n0)),
                          fmt(per[a], 1),
                          "{:+.1f}".format(per[a] - ref) if ref is not None else "–"])
        self.table(["allocator", "N", "Ir (N)", "Ir (0)", "Ir per pair",
                    "Ir per pair − %s's" % REFERENCE], table)
        v = per.get(SUBJECT)
        figure = fmt(v, 1) if v is not None else "–"
        others = ["%s %s" % (a, fmt(per[a], 1)) for a in (REFERENCE, BASELINE) if a in per]
        if v is not None and others:
            figure += " (" + ", ".join(others) + ")"
        self.targets.append((title, figure, self.verdict(v, lambda x: x <= IR_TARGET)))

    def programs(self):
        wall, rss = Series(), Series()
        same = defaultdict(lambda: True)
        for name, r, a, t in read_tsv(self.res, "programs.tsv"):
            wall.add(name, a, r, float(t))
        for name, r, a, k, _secs, sm in read_tsv(self.res, "rss.tsv"):
            rss.add(name, a, r, float(k))
            if sm != "1":
                same[(name, a)] = False
        self.w("## Real programs")
        self.w()
        self.w("Wall time with `hyperfine -N` (%s warm-up, %s timed runs per "
               "allocator per round; the median of each round), and peak RSS from "
               "`build/bench/peakrss` (one run per allocator per round). Inputs are "
               "generated by `bench/inputs.py` with fixed seeds. Every program's "
               "output is compared with its output under glibc; a mismatch is "
               "marked ✗ and listed under Notes."
               % (self.meta.get("hf_warmup", "?"), self.meta.get("hf_runs", "?")))
        self.w()
        progs = rss.benches() or wall.benches()
        if not progs:
            self.w("*Not measured.*")
            self.w()
            return
        allocs = list(self.allocs)
        if any(rss.v[p].get("detheap-spec") for p in progs):
            allocs.insert(allocs.index(SUBJECT) + 1 if SUBJECT in allocs else 0,
                          "detheap-spec")
        rows = []
        for p in progs:
            row = ["`%s`" % p]
            for a in allocs:
                t = wall.med(p, a)
                k = rss.med(p, a)
                mark = "" if same[(p, a)] else " ✗"
                row.append("%s ms, %s MiB%s" % (fmt(t * 1000 if t else None, 0),
                                               fmt(k / 1024 if k else None, 1), mark))
            rows.append(row)
        self.w("Median wall time and peak RSS (detheap: the drop-in's default "
               "fine class set; detheap-spec: `DETHEAP_CLASSES=spec`, the "
               "original design's 13 classes):")
        self.w()
        self.table(["program"] + allocs, rows)
        self.ratio_table(wall, progs, "Wall-time ratio")
        self.ratio_table(rss, progs, "Peak RSS ratio")
        if "detheap-spec" in allocs:
            self.ratio_table(rss, progs, "Peak RSS ratio", subject="detheap-spec")
        titles = ("real programs: median wall time <= mimalloc's",
                  "real programs: peak RSS <= %gx glibc's on each" % PROG_RSS_TARGET,
                  "real programs: peak RSS geometric mean <= %gx glibc's"
                  % PROG_RSS_GEOMEAN)
        if self.has_subject:
            bad_m, walls, rsss = [], [], []
            for p in progs:
                t = wall.ratio_summary(p, SUBJECT, BASELINE)
                m = rss.ratio_summary(p, SUBJECT, "glibc")
                if t is not None:
                    walls.append(t[1])
                if m is None or m[1] > PROG_RSS_TARGET:
                    bad_m.append(p)
                if m is not None:
                    rsss.append(m[1])
            mw = median(walls) if walls else None
            gm = geomean(rsss) if rsss else None
            self.targets.append((titles[0],
                                 "median detheap / %s: %s" % (BASELINE, fmt(mw)),
                                 self.verdict(mw, lambda x: x <= 1.0)))
            self.targets.append((titles[1],
                                 "over on: " + (", ".join(bad_m) or "none"),
                                 "met" if not bad_m else "not met"))
            self.targets.append((titles[2], "geomean %s" % fmt(gm),
                                 self.verdict(gm, lambda x: x <= PROG_RSS_GEOMEAN)))
        else:
            for t in titles:
                self.targets.append((t, "–", "not measured"))

    def handle(self):
        s = Series()
        nops = {}
        for c, r, impl, _best, med, n in read_tsv(self.res, "handle.tsv"):
            s.add(c, impl, r, float(med))
            nops[c] = n
        self.w("## Handle API against the original Rust design")
        self.w()
        self.w("Operations per second on the conformance op scripts "
               "(`tests/conformance/case*.ops`): `build/bench/handle_ops` drives "
               "detheap's handle API (dh_alloc, dh_free, dh_get, dh_write; static "
               "library), `build/bench/handle_ops_rs` the original design "
               "(binned_alloc.rs compiled in with `rustc -O`). Both parse the "
               "script first and repeat it until %s s of timed work (at least 3 "
               "repetitions, at most 1000); the figure is the median repetition. "
               "Per repetition, outside the clock: the C side empties its one heap "
               "with `dh_heap_reset` (created once before the first repetition; "
               "the reset zeroes the storage the previous repetition carved and "
               "keeps its pages committed), the Rust side drops the previous "
               "`BinnedAllocator` and makes a new one (empty `Vec`s; glibc keeps "
               "the freed memory for reuse). Inside the clock the Rust side grows "
               "and zero-fills its storage `Vec` as it carves blocks; the C side "
               "carves from storage the reset already zeroed. Only the first "
               "repetition of either side runs on fresh pages. Higher is better."
               % self.meta.get("handle_seconds", "the given"))
        self.w()
        cases = s.benches()
        if not cases:
            self.w("*Not measured.*")
            self.w()
            self.targets.append(("handle API faster than the original Rust design",
                                 "–", "not measured"))
            return
        rows = []
        for c in cases:
            cm, rm = s.med(c, "C"), s.med(c, "Rust")
            rows.append(["`%s`" % c, nops[c], fmt(cm / 1e6 if cm else None),
                         fmt(rm / 1e6 if rm else None),
                         ratio_cell(s.ratio_summary(c, "C", "Rust"))])
        self.table(["script", "ops", "detheap (M ops/s)", "Rust (M ops/s)",
                    "detheap / Rust, median (min–max)"], rows)
        meds = [(s.ratio_summary(c, "C", "Rust") or (0, None, 0))[1] for c in cases]
        if any(m is None for m in meds):
            self.targets.append(("handle API faster than the original Rust design",
                                 "–", "not measured"))
            return
        slower = [c for c, m in zip(cases, meds) if m <= 1.0]
        g = geomean(meds)
        self.w("Geometric mean detheap / Rust: %s." % fmt(g))
        self.w()
        self.targets.append((
            "handle API faster than the original Rust design (every script)",
            "geomean %sx; slower on: %s" % (fmt(g), ", ".join(slower) or "none"),
            "met" if not slower else "not met"))

    def image(self):
        rows = read_tsv(self.res, "image.tsv")
        self.w("## Heap images and rollback")
        self.w()
        self.w("`build/bench/image` (bench/image.c, static library). **Open vs "
               "rebuild**: a fresh process builds a pointer structure in a heap "
               "at a fixed base (a binary search tree of 2 M nodes per GiB, keys "
               "in random order, each node with a string of 16..496 bytes, one "
               "in 1000 with a 200 KiB block, every byte written) and saves it; "
               "fresh processes then build it again, or open the image "
               "(`dh_heap_open`, private) and walk it: every node in key order "
               "and every byte of its string and block, or every block's bytes "
               "in address order. Medians of 3. **Rollback**: the image opened "
               "privately, a snapshot taken, then rounds of writing one byte "
               "into 1% of its data pages chosen at random, restored by "
               "`dh_heap_rollback`, by a `fork()`ed child doing the writes (the "
               "parent is the snapshot, as fuzzers do it), or by copying the "
               "whole heap back from a copy. **Write tracking**: finding the "
               "written pages among 1 GiB of anonymous memory with 1% written.")
        self.w()
        opens = [r for r in rows if r[0] == "open"]
        if not opens:
            self.w("*Not measured.*")
            self.w()
            self.targets.append(("image open + full walk >= 20x faster than "
                                 "rebuilding", "–", "not measured"))
            self.targets.append(("rollback after touching 1%: <= 1/50 of a full "
                                 "copy", "–", "not measured"))
            return
        o = opens[0]
        mib, rebuild, walk, open_s, ok = o[1], float(o[2]), float(o[3]), float(o[4]), o[5]
        read = float(o[6]) if len(o) > 6 else None
        built_walk = float(o[7]) if len(o) > 7 else None
        trows = [["rebuild (allocate, fill, insert)", fmt(rebuild, 3), "1"],
                 ["open only", fmt(open_s, 4), fmt(rebuild / open_s, 0)],
                 ["open + walk in key order", fmt(walk, 3), fmt(rebuild / walk, 1)]]
        if read is not None:
            trows.append(["open + read every block in address order",
                          fmt(read, 3), fmt(rebuild / read, 1)])
        if built_walk is not None:
            trows.append(["(the key-order walk alone, in the building process)",
                          fmt(built_walk, 3), "–"])
        self.w("Structure of %s MiB; the sums agree: %s." % (mib, "yes" if ok == "1" else "**no**"))
        self.w()
        self.table(["", "seconds", "rebuild / this"], trows)
        self.targets.append(("image open + full walk >= 20x faster than rebuilding",
                             "key-order walk %.1fx, address-order read %sx, open "
                             "alone %.0fx" % (rebuild / walk,
                                              fmt(rebuild / read, 1) if read else "–",
                                              rebuild / open_s),
                             "met" if rebuild / walk >= 20 else "not met"))
        rb = {r[1]: r for r in rows if r[0] == "rollback"}
        if rb:
            rrows = []
            ways = ("dh_heap_rollback", "dh_heap_rollback+reread", "fork",
                    "memfd-cow-wp", "memfd-cow-wp+reread", "memfd-cow-pt",
                    "memfd-cow-pt+reread", "copy-written-pages", "full-copy")
            for way in ways:
                if way in rb:
                    r = rb[way]
                    rrows.append(["`%s`" % way, r[2], fmt(float(r[3]) * 1e3, 2),
                                  fmt(float(r[4]) * 1e3, 2), fmt(float(r[5]), 2),
                                  r[6] if len(r) > 6 else ""])
            self.w("Rollback after writing 1% of the pages (means of 20 rounds, "
                   "3 for the full copy; restore = the rollback call itself, the "
                   "fork() for fork, the copy back for a full copy; +reread: the "
                   "restore and then reading each written page once more, where "
                   "a copy-on-write restore pays its refaults; memfd-cow-*: the "
                   "copy-on-write experiment of bench_cow, outside the library; "
                   "copy-written-pages: only the written pages copied back from "
                   "a copy, their list given for free, which no rollback that "
                   "copies can beat):")
            self.w()
            self.table(["way", "pages written", "round (ms)", "restore (ms)",
                        "restore per written page (µs)", "note"], rrows)
            if "dh_heap_rollback" in rb and "full-copy" in rb:
                # judged on the rollback call alone; the figure with the
                # re-reads is shown beside it
                full = float(rb["full-copy"][4])
                ratio = full / float(rb["dh_heap_rollback"][4])
                both = rb.get("dh_heap_rollback+reread")
                note = "1/%.0f (the rollback call)" % ratio
                if both is not None:
                    note += "; 1/%.0f with the re-reads" % (full / float(both[4]))
                floor = rb.get("copy-written-pages")
                if floor is not None:
                    note += ("; copying just the written pages back, with no "
                             "tracking, is 1/%.0f" % (full / float(floor[4])))
                self.targets.append((
                    "rollback after touching 1%: <= 1/50 of a full copy",
                    note, "met" if ratio >= 50 else "not met"))
        tr = [r for r in rows if r[0] == "track"]
        if tr:
            self.w("Write tracking on 1 GiB with 1% of the pages written:")
            self.w()
            self.table(["tracker", "protect all (ms)", "first write (µs/page)",
                        "find the written (ms)", "note"],
                       [["`%s`" % r[1], fmt(float(r[2]) * 1e3, 2), fmt(float(r[3]), 2),
                         fmt(float(r[4]) * 1e3, 2), r[5] if len(r) > 5 else ""]
                        for r in tr])

    def verdict(self, v, ok):
        if v is None:
            return "not measured"
        return "met" if ok(v) else "not met"

    def commands(self):
        self.w("## Commands")
        self.w()
        self.w("Everything above comes from one command, `make bench` "
               "(`scripts/bench.sh BUILD_DIR`; `BENCH_QUICK=1` for the quick "
               "mode). It runs, for every allocator (`LD_PRELOAD=<library>`)%s:"
               % ("; for the reference row %s, the `micro` and `callgrind` lines "
                  "only" % ", ".join(self.refs) if self.refs else ""))
        self.w()
        self.w("```")
        for row in read_tsv(self.res, "commands.tsv"):
            self.w("%-10s %-12s %s" % tuple(row[:3]))
        self.w("```")
        self.w()

    def write(self):
        self.machine()
        body_start = len(self.lines)
        self.micro()
        self.threads()
        self.instructions()
        self.programs()
        self.handle()
        self.image()
        body = self.lines[body_start:]
        self.lines = self.lines[:body_start]
        self.w("## Targets")
        self.w()
        if not self.has_subject:
            self.w("detheap was not measured in this run (see Notes), so no target "
                   "could be checked.")
            self.w()
        self.table(["target", "figure", "verdict"],
                   [[t, f, "**%s**" % v] for t, f, v in self.targets])
        self.lines += body
        self.commands()
        self.w("## Notes")
        self.w()
        for n in self.notes or ["Nothing failed or was skipped."]:
            self.w("- " + n)
        self.w()
        with open(self.out_md, "w") as f:
            f.write("\n".join(self.lines))


def main():
    res, out_md, out_png = sys.argv[1:4]
    Report(res, out_md, out_png).write()


if __name__ == "__main__":
    main()
