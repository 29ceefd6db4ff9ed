// cxx_nondet.cc - a C++ program whose nondeterministic allocation sits in
// a namespaced member function: `detheap check` must show its demangled
// name, sim::World::spawn(), on the stack.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace sim {
struct World {
    void *last = nullptr;
    __attribute__((noinline)) void spawn();
};

void World::spawn() {
    // the size depends on the pid: different in every run
    last = std::malloc(32 + static_cast<size_t>(getpid() % 7) * 16);
}
}  // namespace sim

int main() {
    void *before[8];
    for (auto &b : before) b = std::malloc(24);
    // several worlds, so that some run surely differs from the first
    sim::World w;
    w.spawn();
    std::printf("%p\n", w.last);
    std::free(w.last);
    for (auto &b : before) std::free(b);
    return 0;
}
