#!/usr/bin/env python3
"""inputs.py - generate the inputs of the real-program benchmarks.

    inputs.py DIR SCALE

writes into DIR: sqlite.sql, table.lua, data.json, words.txt, dict.py,
xz.dat and a git repository git/ (through git fast-import, with fixed
names and dates, so its hashes are the same on every machine).  SCALE
multiplies the sizes (1 for the full run, smaller for the quick one).
Everything comes from a fixed-seed linear congruential generator, not from
the random module, so the files are byte-identical across Python versions.
"""
import os
import subprocess
import sys


class Lcg:
    """64-bit LCG (Knuth's MMIX constants); the top bits are used."""

    def __init__(self, seed):
        self.s = seed

    def next(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return self.s >> 33

    def range(self, lo, hi):
        return lo + self.next() % (hi - lo + 1)


WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo "
         "lima mike november oscar papa quebec romeo sierra tango uniform "
         "victor whiskey xray yankee zulu").split()


def word(r):
    return WORDS[r.range(0, len(WORDS) - 1)] + str(r.range(0, 999))


def sqlite_sql(path, n):
    r = Lcg(1)
    with open(path, "w") as f:
        f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, a INT, b TEXT, c REAL);\n")
        f.write("BEGIN;\n")
        for i in range(n):
            f.write("INSERT INTO t(a, b, c) VALUES(%d, '%s %s', %d.%02d);\n"
                    % (r.range(0, n), word(r), word(r), r.range(0, 9999), r.range(0, 99)))
        f.write("COMMIT;\n")
        f.write("CREATE INDEX ta ON t(a);\nCREATE INDEX tb ON t(b);\n")
        f.write("SELECT a % 97, count(*), sum(c) FROM t GROUP BY 1 ORDER BY 1;\n")
        f.write("SELECT count(*) FROM t x JOIN t y ON x.a = y.id WHERE y.c > 5000;\n")
        f.write("SELECT b, count(*) FROM t GROUP BY b ORDER BY 2 DESC, 1 LIMIT 20;\n")
        f.write("SELECT substr(b, 1, 3) AS p, group_concat(id) FROM t "
                "WHERE a < %d GROUP BY p ORDER BY p;\n" % (n // 20))
        f.write("UPDATE t SET b = b || '-x' WHERE a % 3 = 0;\n")
        f.write("DELETE FROM t WHERE a % 5 = 0;\nSELECT count(*), max(b) FROM t;\n")


def lua_script(path, n):
    with open(path, "w") as f:
        f.write("""-- table-heavy: records, string keys, sorting, concatenation
local n = %d
local recs, index = {}, {}
local seed = 12345
local function rnd(m) seed = (seed * 1103515245 + 12345) %% 2147483648; return seed %% m end
for i = 1, n do
  local r = {id = i, name = "k" .. rnd(n), tags = {rnd(100), rnd(100), rnd(100)}}
  recs[i] = r
  local bucket = index[r.name]
  if bucket == nil then bucket = {}; index[r.name] = bucket end
  bucket[#bucket + 1] = r
end
table.sort(recs, function(x, y) if x.name ~= y.name then return x.name < y.name end return x.id < y.id end)
local keys, total = 0, 0
for k, b in pairs(index) do keys = keys + 1; total = total + #b end
local parts = {}
for i = 1, n, 7 do parts[#parts + 1] = recs[i].name .. ":" .. recs[i].tags[1] end
local s = table.concat(parts, ",")
for i = 1, n, 2 do index[recs[i].name] = nil; recs[i] = {i} end
collectgarbage()
print(keys, total, #s, recs[1].name or recs[1][1])
""" % n)


def json_data(path, n):
    r = Lcg(2)
    with open(path, "w") as f:
        f.write("[\n")
        for i in range(n):
            f.write('%s{"id": %d, "g": "%s", "name": "%s", "score": %d, '
                    '"tags": ["%s", "%s"], "nested": {"x": %d, "y": [%d, %d]}}\n'
                    % ("," if i else "", i, WORDS[r.range(0, 25)], word(r),
                       r.range(0, 1000), word(r), word(r), r.range(0, 99),
                       r.range(0, 9), r.range(0, 9)))
        f.write("]\n")


def words_txt(path, n):
    r = Lcg(3)
    with open(path, "w") as f:
        for _ in range(n):
            f.write("%s %s %d\n" % (word(r), word(r), r.range(0, 1000)))


def python_script(path, n):
    with open(path, "w") as f:
        f.write("""# dict/list-heavy: build, index, sort, rebuild
n = %d
seed = 7
def rnd(m):
    global seed
    seed = (seed * 1103515245 + 12345) %% 2147483648
    return seed %% m
recs = [{"id": i, "k": "k%%d" %% rnd(n), "v": [rnd(100) for _ in range(3)]} for i in range(n)]
index = {}
for r in recs:
    index.setdefault(r["k"], []).append(r)
recs.sort(key=lambda r: (r["k"], r["id"]))
pairs = {(r["id"], r["v"][0]): r["k"] for r in recs[::3]}
words = " ".join(r["k"] for r in recs[::5]).split()
counts = {}
for w in words:
    counts[w] = counts.get(w, 0) + 1
del recs[::2]
print(len(index), len(pairs), len(counts), sum(len(v) for v in index.values()))
""" % n)


def xz_data(path, n):
    r = Lcg(4)
    with open(path, "w") as f:
        for _ in range(n):
            f.write(" ".join(word(r) for _ in range(8)) + "\n")


def git_repo(path, commits):
    """A history of `commits` commits over 20 files, each commit rewriting a
    few lines of three files; fixed author and dates give fixed hashes."""
    r = Lcg(5)
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", path],
                   check=True, env=env)
    files = [["line %d of file %d %s" % (j, i, word(r)) for j in range(60)]
             for i in range(20)]
    out = []
    for c in range(commits):
        out.append("commit refs/heads/main\nmark :%d\n" % (c + 1))
        out.append("committer Bench <bench@example.org> %d +0000\n" % (1600000000 + 60 * c))
        msg = "change %d: %s %s\n" % (c, word(r), word(r))
        out.append("data %d\n%s" % (len(msg.encode()), msg))
        if c:
            out.append("from :%d\n" % c)
        for _ in range(3):
            i = r.range(0, 19)
            for _ in range(4):
                files[i][r.range(0, 59)] = "edit %d %s" % (c, word(r))
            blob = "\n".join(files[i]) + "\n"
            out.append("M 100644 inline f%02d.txt\ndata %d\n%s\n"
                       % (i, len(blob.encode()), blob))
    subprocess.run(["git", "-C", path, "fast-import", "--quiet"],
                   input="".join(out).encode(), check=True, env=env)


def main():
    out, scale = sys.argv[1], float(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    n = lambda base: max(10, int(base * scale))
    sqlite_sql(os.path.join(out, "sqlite.sql"), n(40000))
    lua_script(os.path.join(out, "table.lua"), n(80000))
    json_data(os.path.join(out, "data.json"), n(20000))
    words_txt(os.path.join(out, "words.txt"), n(200000))
    python_script(os.path.join(out, "dict.py"), n(80000))
    xz_data(os.path.join(out, "xz.dat"), n(12000))
    git_dir = os.path.join(out, "git")
    if not os.path.isdir(git_dir):
        git_repo(git_dir, n(1500))


if __name__ == "__main__":
    main()
