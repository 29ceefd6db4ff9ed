/*
 * ops.h - the op-script runner (`detheap ops`): replays a script of
 * handle-API operations on a fresh heap and prints one answer per op, in
 * the format of the conformance scripts (docs/OPS.md).
 */
#ifndef DH_TOOLS_OPS_H
#define DH_TOOLS_OPS_H

#include <stdio.h>

/* Run the script read from `in`, writing answers to `out`.  `name` names the
 * script in error messages.  Returns 0, or 2 after printing
 * "NAME:LINE: reason" to `err` for a malformed line, or 1 if the heap could
 * not be created or ran out of memory. */
int dh_ops_run(FILE *in, FILE *out, FILE *err, const char *name);

#endif
