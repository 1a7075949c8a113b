# loom — plain Makefile. `make help` lists the targets.
#
# Objects go to build/<config>/ (cpu, asan), never next to the sources. Headers are tracked with -MMD -MP.
# Every source folder is compiled by wildcard, so adding a file needs no Makefile change. Files named
# *_avx2.c / *_avx512.c get the matching -m flags; everything else is built for baseline x86-64 and the
# SIMD paths are chosen at run time.

.DEFAULT_GOAL := all
SHELL := /bin/bash

CC      ?= cc
OPT     ?= -O2
CONFIG  ?= cpu
BUILD   := build/$(CONFIG)
LOOM_SHARED ?= ../shared

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS  := -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) -I. -MMD -MP -pthread $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(EXTRA_LDFLAGS)
LDLIBS  := -lm

ifeq ($(CONFIG),asan)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif

# ---- feature detection (printed, so a missing library is never a silent surprise) ----
PKG := pkg-config
have = $(shell $(PKG) --exists $(1) 2>/dev/null && echo 1 || echo 0)

HAVE_PCRE2     := $(call have,libpcre2-8)
HAVE_JANSSON   := $(call have,jansson)
HAVE_TURBOJPEG := $(call have,libturbojpeg)
HAVE_PNG       := $(call have,libpng)
HAVE_WEBP      := $(call have,libwebp)
HAVE_FFMPEG    := $(call have,libavformat libavcodec libavutil libswscale)
HAVE_CRITERION := $(call have,criterion)
HAVE_NVCC      := $(shell command -v nvcc >/dev/null 2>&1 || test -x /usr/local/cuda/bin/nvcc && echo 1 || echo 0)

ifneq ($(MAKECMDGOALS),deps)
ifneq ($(MAKECMDGOALS),help)
ifneq ($(MAKECMDGOALS),clean)
ifeq ($(LOOM_QUIET),)
$(info loom build ($(CONFIG)):)
$(info $(if $(filter 1,$(HAVE_PCRE2)),  ✓ libpcre2-8 (tokenizer),  ✗ libpcre2-8 missing: required — run 'make deps'))
$(info $(if $(filter 1,$(HAVE_JANSSON)),  ✓ jansson (JSON),  ✗ jansson missing: required — run 'make deps'))
$(info $(if $(filter 1,$(HAVE_TURBOJPEG)),  ✓ libturbojpeg (JPEG),  ✗ libturbojpeg missing: JPEG decoding off))
$(info $(if $(filter 1,$(HAVE_PNG)),  ✓ libpng (PNG),  ✗ libpng missing: PNG decoding off))
$(info $(if $(filter 1,$(HAVE_WEBP)),  ✓ libwebp (WebP),  ✗ libwebp missing: WebP decoding off))
$(info $(if $(filter 1,$(HAVE_FFMPEG)),  ✓ FFmpeg libavformat/libavcodec/libswscale (video),  ✗ FFmpeg libraries missing: video off))
$(info $(if $(filter 1,$(HAVE_CRITERION)),  ✓ criterion (tests),  ✗ criterion missing: tests cannot build — run 'make deps'))
$(info $(if $(filter 1,$(HAVE_NVCC)),  ✓ nvcc found (no CUDA backend in this tree yet),  ✗ nvcc not found: CUDA skipped))
export LOOM_QUIET := 1
endif
endif
endif
endif

pkgcflags = $(shell $(PKG) --cflags $(1) 2>/dev/null)
pkglibs   = $(shell $(PKG) --libs $(1) 2>/dev/null)

FEATURE_DEFS :=
ifeq ($(HAVE_PCRE2),1)
  FEATURE_DEFS += -DLOOM_WITH_PCRE2=1 $(call pkgcflags,libpcre2-8)
  LDLIBS += $(call pkglibs,libpcre2-8)
endif
ifeq ($(HAVE_JANSSON),1)
  FEATURE_DEFS += -DLOOM_WITH_JANSSON=1 $(call pkgcflags,jansson)
  LDLIBS += $(call pkglibs,jansson)
endif
ifeq ($(HAVE_TURBOJPEG),1)
  FEATURE_DEFS += -DLOOM_WITH_TURBOJPEG=1 $(call pkgcflags,libturbojpeg)
  LDLIBS += $(call pkglibs,libturbojpeg)
endif
ifeq ($(HAVE_PNG),1)
  FEATURE_DEFS += -DLOOM_WITH_PNG=1 $(call pkgcflags,libpng)
  LDLIBS += $(call pkglibs,libpng)
endif
ifeq ($(HAVE_WEBP),1)
  FEATURE_DEFS += -DLOOM_WITH_WEBP=1 $(call pkgcflags,libwebp)
  LDLIBS += $(call pkglibs,libwebp)
endif
ifeq ($(HAVE_FFMPEG),1)
  FEATURE_DEFS += -DLOOM_WITH_FFMPEG=1 $(call pkgcflags,libavformat libavcodec libavutil libswscale)
  LDLIBS += $(call pkglibs,libavformat libavcodec libavutil libswscale)
endif
CFLAGS += $(FEATURE_DEFS)

# ---- sources ----
LIB_DIRS := core text vision video fusion
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libloom.a
LOOM     := $(BUILD)/loom

SIMD_AVX2   := -mavx2 -mfma -mf16c
SIMD_AVX512 := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16

# V=1 prints full command lines; by default one short line per file keeps CI logs readable.
V ?= 0
ifeq ($(V),1)
  Q :=
  say = @true
else
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2)
endif

$(BUILD)/%_avx2.o: %_avx2.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(SIMD_AVX2) -c $< -o $@

$(BUILD)/%_avx512.o: %_avx512.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(SIMD_AVX512) -c $< -o $@

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

$(LOOM): $(CLI_OBJ) $(LIB)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

all: $(LOOM)
	@ln -sf $(LOOM) loom 2>/dev/null || true

# ---- tests: one Criterion binary per folder (tests/<folder>/*.c) ----
TEST_DIRS := $(patsubst tests/%/,%,$(filter %/,$(wildcard tests/*/)))
TEST_DIRS := $(filter-out bench fuzz,$(TEST_DIRS))
TEST_BINS := $(foreach d,$(TEST_DIRS),$(if $(wildcard tests/$(d)/*.c),$(BUILD)/tests/test_$(d)))
CRIT_CFLAGS := $(call pkgcflags,criterion)
CRIT_LIBS   := $(call pkglibs,criterion)

define test_rule
$(BUILD)/tests/test_$(1): $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/$(1)/*.c)) $(LIB)
	@mkdir -p $$(@D)
	$$(call say,LINK,$$@)
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(LIB) $$(CRIT_LIBS) $$(LDLIBS)
endef
$(foreach d,$(TEST_DIRS),$(eval $(call test_rule,$(d))))

$(BUILD)/tests/%.o: CFLAGS += $(CRIT_CFLAGS) -DLOOM_TEST_BUILD=1

test-build: $(TEST_BINS) $(LOOM)

# Runs every test binary; LOOM_SHARED tells tests where the reference data lives.
test-run: test-build
	@set -e; export LOOM_SHARED="$(abspath $(LOOM_SHARED))" LOOM_BIN="$(abspath $(LOOM))"; \
	fail=0; for t in $(TEST_BINS); do echo "== $$t"; $$t $(TEST_ARGS) || fail=1; done; \
	if [ $$fail -ne 0 ]; then echo "FAILED"; exit 1; fi; echo "all test binaries passed"

# The README's two commands: each installs missing Debian packages first, then builds in a fresh make
# (so feature detection sees the newly installed libraries).
test: deps
	@$(MAKE) --no-print-directory test-run

run: deps
	@$(MAKE) --no-print-directory all
	@LOOM_SHARED="$(LOOM_SHARED)" bash tools/run-main-job.sh "$(abspath $(LOOM))"

deps:
	@bash tools/install-deps.sh

asan:
	@$(MAKE) --no-print-directory CONFIG=asan OPT=-O1 test-run

bench: all
	$(LOOM) bench kernels $(BENCH_ARGS)

# libFuzzer targets (tests/fuzz/, clang only, built into build/fuzz/), each run FUZZ_SECONDS; fails on a crash.
FUZZ_SECONDS ?= 30
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) LOOM_SHARED="$(abspath $(LOOM_SHARED))" bash tools/fuzz.sh $(FUZZ_TARGETS)

check-deps:
	@bash tools/check-deps.sh

# The CUDA backend is not written yet (cuda/ is reserved); this target says so instead of failing.
cuda:
	@if [ ! -f cuda/cuda.mk ]; then echo "cuda: no CUDA backend in this tree yet; the CPU build is complete"; \
	 elif [ "$(HAVE_NVCC)" = 1 ]; then $(MAKE) --no-print-directory -f cuda/cuda.mk; \
	 else echo "nvcc not found: the CUDA backend is skipped (CPU build unaffected)"; fi

clean:
	rm -rf build loom

help:
	@echo "loom make targets:"
	@echo "  make            build build/cpu/loom (and ./loom symlink)"
	@echo "  make run        install Debian deps, build, run the main job (see README)"
	@echo "  make test       install Debian deps, build and run all Criterion tests"
	@echo "  make asan       tests under AddressSanitizer + UBSan (build/asan)"
	@echo "  make bench      kernel micro-benchmark (loom bench kernels)"
	@echo "  make fuzz       build the libFuzzer targets with clang, run each FUZZ_SECONDS=30 (FUZZ_TARGETS=gguf ...)"
	@echo "  make check-deps fail on a forbidden include edge between folders"
	@echo "  make deps       install missing Debian packages (apt-get, as root)"
	@echo "  make cuda       build the CUDA backend where nvcc exists"
	@echo "  make clean"
	@echo "Variables: OPT=-O2 CC=cc LOOM_SHARED=../shared TEST_ARGS=... BENCH_ARGS=..."

.PHONY: all test test-run test-build run deps asan bench fuzz check-deps cuda clean help

-include $(shell find build/$(CONFIG) -name '*.d' 2>/dev/null)
