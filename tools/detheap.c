/*
 * detheap.c - the detheap command-line tool: subcommand dispatch.
 *
 *   detheap run      run a program on detheap; statistics or profile at exit
 *   detheap check    run a program several times; where do the runs part?
 *   detheap top      a trace's allocation sites, leaks and misuse, by stack
 *   detheap report   draw a recorded trace's heap (gnuplot)
 *   detheap replay   replay a trace against an allocator and measure it
 *   detheap ops      replay an op script of the handle API (docs/OPS.md)
 *   detheap image    what a heap image holds; whether it is intact
 *
 * Exit codes: 0 success; 1 the operation failed or the runs differ;
 * 2 usage error or malformed input; 3 check's verdict is incomplete; 4
 * check's runs all crashed alike; `run` exits with the program's status.
 * The manual is docs/detheap.1.
 */
#include <detheap.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ops.h"

static const char usage[] =
    "usage: detheap <command> [options]\n"
    "\n"
    "commands:\n"
    "  run [--stats] [--json] [--top] [--leaks] [--trace FILE] [--base ADDR]\n"
    "      -- CMD ARGS\n"
    "                 run CMD on detheap; exit with its status\n"
    "  check [-n N] [--aslr=off] [--depth D] -- CMD ARGS\n"
    "                 run CMD N times (default 2); say whether the runs made\n"
    "                 the same heap calls with the same addresses and ended\n"
    "                 alike, or where they first part and from which call\n"
    "                 stack\n"
    "  top TRACE [-n N] [--depth D] [--leaks]\n"
    "                 allocation sites by bytes and by calls; blocks live at\n"
    "                 exit by site; misuse, with stacks\n"
    "  report TRACE -o OUT.svg|OUT.png\n"
    "                 draw live bytes per size class and per allocation site\n"
    "                 and the size histogram\n"
    "  replay TRACE [--allocator NAME|PATH]\n"
    "                 replay a trace against detheap, glibc or another\n"
    "                 allocator; time, peak RSS, instructions\n"
    "  ops [FILE]     replay a handle-API op script (stdin if FILE is - or\n"
    "                 absent) on a fresh heap; one answer per op\n"
    "  image info|check FILE\n"
    "                 a heap image's base, sizes, classes and root; or\n"
    "                 verify every checksum and invariant of it\n"
    "\n"
    "options:\n"
    "  -h, --help     this help (also: detheap <command> --help)\n"
    "  --version      print the version\n"
    "\n"
    "exit status: 0 success, 1 failure or nondeterministic runs, 2 usage\n"
    "error or malformed input, 3 check incomplete (a process left no usable\n"
    "trace), 4 check: every run crashed alike; run passes CMD's status\n"
    "through\n";

static const char ops_usage[] =
    "usage: detheap ops [FILE]\n"
    "\n"
    "Replay an op script on a fresh heap and print one answer per op.\n"
    "Lines: 'a SIZE', 'f K', 'w K LEN B', 'r K LEN', 's'; '#' comments.\n"
    "See docs/OPS.md for the format.\n";

static int is_help(const char *a) {
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

static int cmd_ops(int argc, char **argv) {
    if (argc > 2 || (argc == 2 && is_help(argv[1]))) {
        fputs(ops_usage, argc == 2 ? stdout : stderr);
        return argc == 2 ? 0 : 2;
    }
    const char *path = argc == 2 ? argv[1] : "-";
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (in == NULL) {
        fprintf(stderr, "detheap ops: %s: %s\n", path, strerror(errno));
        return 2;
    }
    int rc = dh_ops_run(in, stdout, stderr, path);
    if (in != stdin) fclose(in);
    if (fflush(stdout) != 0) return 1;
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (is_help(cmd)) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        uint32_t v = dh_version();
        printf("detheap %u.%u.%u\n", v >> 16, (v >> 8) & 255, v & 255);
        return 0;
    }
    if (strcmp(cmd, "ops") == 0) return cmd_ops(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0) return dh_cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0) return dh_cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0) return dh_cmd_report(argc - 1, argv + 1);
    if (strcmp(cmd, "top") == 0) return dh_cmd_top(argc - 1, argv + 1);
    if (strcmp(cmd, "replay") == 0) return dh_cmd_replay(argc - 1, argv + 1);
    if (strcmp(cmd, "image") == 0) return dh_cmd_image(argc - 1, argv + 1);
    if (strcmp(cmd, "__replay-child") == 0)
        return dh_cmd_replay_child(argc - 1, argv + 1);
    fprintf(stderr, "detheap: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
