# detheap: the entry points.  The real build is CMake; this file gives the
# short names (make, make test, make demo, make bench ...) and installs what
# each needs on a fresh Debian machine (scripts/deps.sh).
#
#   make              build everything into build/
#   make test         unit, conformance and integration tests (the preload
#                     tests' memcheck variants included), then the same
#                     suite under ASan+UBSan (build-asan/) and the threaded
#                     tests under TSan (build-tsan/)
#   make test-memcheck  only the memcheck variants of the preload tests
#   make demo         build and run the determinism demonstration
#   make bench        run the benchmarks, write docs/BENCHMARKS.md
#   make fuzz         run each fuzzer for FUZZ_SECONDS (default 60)
#   make check-programs  the long set of real-program tests
#   make install      install under PREFIX (default /usr/local), DESTDIR

BUILD ?= build
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=

.PHONY: all build test test-plain test-asan test-tsan test-memcheck demo \
        bench fuzz \
        check-programs install clean deps-build deps-test

all: build

deps-build:
	@scripts/deps.sh build tool
deps-test:
	@scripts/deps.sh test

# configure-and-build DIR EXTRA-CMAKE-FLAGS
define cmake_build
	cmake -S . -B $(1) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) $(2) >/dev/null
	cmake --build $(1) -j $(JOBS)
endef

build: deps-build
	$(call cmake_build,$(BUILD),-DCMAKE_BUILD_TYPE=$(BUILD_TYPE))

test: deps-test test-plain test-asan test-tsan

# --no-tests=error: a label that matches no test is a failure, not a pass.
CTEST = ctest --output-on-failure --no-tests=error -j $(JOBS)

test-plain: deps-test
	$(call cmake_build,$(BUILD),-DCMAKE_BUILD_TYPE=$(BUILD_TYPE))
	cd $(BUILD) && $(CTEST)

test-asan: deps-test
	$(call cmake_build,build-asan,-DDETHEAP_SANITIZE=address -DCMAKE_BUILD_TYPE=Debug)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 $(CTEST) -LE no-asan

test-tsan: deps-test
	$(call cmake_build,build-tsan,-DDETHEAP_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug)
	cd build-tsan && $(CTEST) -L threads

test-memcheck: deps-test
	$(call cmake_build,$(BUILD),-DCMAKE_BUILD_TYPE=$(BUILD_TYPE))
	cd $(BUILD) && $(CTEST) -L memcheck

demo: build
	@scripts/deps.sh demo
	@scripts/demo.sh $(BUILD)

bench: build
	@scripts/bench.sh $(BUILD)

FUZZ_SECONDS ?= 60
fuzz:
	@scripts/fuzz.sh $(FUZZ_SECONDS)

check-programs: build
	@scripts/deps.sh test
	@scripts/check-programs.sh $(BUILD) --cpython

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
