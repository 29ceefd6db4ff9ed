/*
 * demangle.h - C++ names in the tool's stacks (demangle.cc).
 */
#ifndef DH_TOOLS_DEMANGLE_H
#define DH_TOOLS_DEMANGLE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The readable form of a mangled C++ name ("_ZN3sim5World5spawnEv" ->
 * "sim::World::spawn()") into out; false (out untouched) if name is not
 * a mangled C++ name. */
bool dh_demangle(const char *name, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
