// demangle.cc - C++ symbol names made readable for the tool's stacks,
// with libstdc++'s abi::__cxa_demangle.  Only the tool links this file;
// the allocator library has no C++ in it.
#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "demangle.h"

extern "C" bool dh_demangle(const char *name, char *out, size_t cap) {
    if (name == nullptr || std::strncmp(name, "_Z", 2) != 0 || cap == 0)
        return false;
    // a versioned dynamic symbol ("_ZN...@@LIB_1.0"): demangle the name part
    char plain[1024];
    size_t n = std::strcspn(name, "@");
    if (n >= sizeof plain) return false;
    std::memcpy(plain, name, n);
    plain[n] = 0;
    int status = 0;
    char *d = abi::__cxa_demangle(plain, nullptr, nullptr, &status);
    if (d == nullptr || status != 0) {
        std::free(d);
        return false;
    }
    std::snprintf(out, cap, "%s%s", d, name + n);
    std::free(d);
    return true;
}
