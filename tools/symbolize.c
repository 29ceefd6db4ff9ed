/*
 * symbolize.c - return addresses to names with libdw (see symbolize.h).
 *
 * Each file in the map is reported to libdwfl once, at the start of its
 * mapping at file offset 0: for a shared object or PIE that is where its
 * first loadable segment (p_vaddr 0) was placed, which is the base
 * dwfl_report_elf expects; for a fixed-address executable the base is
 * ignored.  Return addresses point after the call, so the address looked
 * up is ra - 1, which lies in the call instruction and so on its line.
 */
#include "symbolize.h"

#include "demangle.h"

#include <elfutils/libdwfl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dh_symbolizer {
    Dwfl *dwfl;
};

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* Report the module of one maps line, if it maps a file at offset 0. */
static void report_line(Dwfl *dwfl, const char *line, size_t len) {
    char buf[4608];
    if (len >= sizeof buf) return;
    memcpy(buf, line, len);
    buf[len] = 0;
    unsigned long long start, end, offset;
    char perms[8];
    int path_at = 0;
    if (sscanf(buf, "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms,
               &offset, &path_at) < 4 || path_at == 0)
        return;
    char *path = buf + path_at;
    if (path[0] != '/' || offset != 0) return;
    if (strstr(path, " (deleted)")) return;
    const char *name = strrchr(path, '/') + 1;
    dwfl_report_elf(dwfl, name, path, -1, (GElf_Addr)start, false);
}

dh_symbolizer_t *dh_sym_open(const char *maps, size_t len) {
    dh_symbolizer_t *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->dwfl = dwfl_begin(&callbacks);
    if (s->dwfl == NULL) {
        free(s);
        return NULL;
    }
    dwfl_report_begin(s->dwfl);
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && maps[j] != '\n') j++;
        report_line(s->dwfl, maps + i, j - i);
        i = j + 1;
    }
    dwfl_report_end(s->dwfl, NULL, NULL);
    return s;
}

bool dh_sym_describe(dh_symbolizer_t *s, uint64_t ra, char *out, size_t cap,
                     bool *in_detheap) {
    *in_detheap = false;
    Dwarf_Addr pc = ra ? ra - 1 : 0;
    Dwfl_Module *mod = s ? dwfl_addrmodule(s->dwfl, pc) : NULL;
    if (mod == NULL) {
        snprintf(out, cap, "0x%" PRIx64 " (no module)", ra);
        return false;
    }
    const char *modname =
        dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    if (modname == NULL) modname = "?";
    *in_detheap = strncmp(modname, "libdetheap", 10) == 0;
    GElf_Off off = 0;
    GElf_Sym sym;
    const char *fn =
        dwfl_module_addrinfo(mod, pc, &off, &sym, NULL, NULL, NULL);
    char readable[1024];
    if (fn && dh_demangle(fn, readable, sizeof readable)) fn = readable;
    int n;
    if (fn) {
        n = snprintf(out, cap, "%s+0x%" PRIx64, fn, (uint64_t)off + 1);
    } else {
        /* no symbol: the call's address inside the module's file, which
         * addr2line -e MODULE takes and which does not change with ASLR */
        Dwarf_Addr bias = 0;
        if (dwfl_module_getelf(mod, &bias) == NULL) bias = 0;
        n = snprintf(out, cap, "%s+0x%" PRIx64, modname, pc - bias);
    }
    if (n < 0 || (size_t)n >= cap) return true;
    Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
    int lineno = 0;
    const char *file =
        line ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
    if (file) {
        const char *base = strrchr(file, '/');
        n += snprintf(out + n, cap - (size_t)n, " (%s:%d)",
                      base ? base + 1 : file, lineno);
    }
    if ((size_t)n < cap) snprintf(out + n, cap - (size_t)n, " [%s]", modname);
    return true;
}

void dh_sym_close(dh_symbolizer_t *s) {
    if (s == NULL) return;
    dwfl_end(s->dwfl);
    free(s);
}
