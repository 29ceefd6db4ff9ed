/*
 * commands.h - the subcommands of the detheap tool, one file each.  Each
 * takes argv starting at the subcommand's name and returns the tool's
 * exit status (tool_util.h).
 */
#ifndef DH_TOOLS_COMMANDS_H
#define DH_TOOLS_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

int dh_cmd_run(int argc, char **argv);
int dh_cmd_top(int argc, char **argv);

/* What `top` prints (cmd_top.c); `run --top / --leaks` share it. */
typedef struct dh_top_opts {
    size_t top;     /* sites per ranking */
    unsigned depth; /* frames per stack */
    bool leaks;     /* the blocks live at exit instead of the rankings */
    bool misuse;    /* only the misuse, of the images that have any */
} dh_top_opts_t;
int dh_top_print(FILE *f, const char *trace, const dh_top_opts_t *o);
/* A count option's value: 1..max, or -1. */
long dh_tool_count_arg(const char *v, long max);
int dh_cmd_check(int argc, char **argv);
int dh_cmd_report(int argc, char **argv);
int dh_cmd_replay(int argc, char **argv);
int dh_cmd_image(int argc, char **argv);
/* The replay child: runs under the allocator being measured. */
int dh_cmd_replay_child(int argc, char **argv);

#endif
