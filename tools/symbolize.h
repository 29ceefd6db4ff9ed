/*
 * symbolize.h - turn the return addresses of a trace's FRAMES records into
 * "function (file:line) [module]", using libdw and the MAPS record (the
 * traced process's /proc/self/maps at exit).
 */
#ifndef DH_TOOLS_SYMBOLIZE_H
#define DH_TOOLS_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dh_symbolizer dh_symbolizer_t;

/* A symbolizer for the modules mapped in maps (its text, len bytes), or
 * NULL if libdw cannot be set up.  Unreadable modules are skipped. */
dh_symbolizer_t *dh_sym_open(const char *maps, size_t len);

/* Describe the return address ra into out: "function+0xOFF (file:line)
 * [module]", C++ names demangled; "module+0xOFF [module]" when the module
 * has no symbol there (OFF is the address of the call in the module's
 * file, as addr2line -e MODULE takes it).  Returns false when ra lies in no known module (out then
 * holds the bare address).  *in_detheap is set
 * when the frame is inside detheap's own libraries, which callers skip. */
bool dh_sym_describe(dh_symbolizer_t *s, uint64_t ra, char *out, size_t cap,
                     bool *in_detheap);

void dh_sym_close(dh_symbolizer_t *s);

#endif
