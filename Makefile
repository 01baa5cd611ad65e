# hug: build the library, the CLI and the tests.
#
#   make                 build/bin/hug and build/lib/libhug.a
#   make test            build and run every test (ends "N passed, N failed")
#   make SANITIZE=1 test the same under AddressSanitizer + UBSan (in build-san/)
#   make test-gpu        the CUDA parity tests, failing (not skipping) without a GPU
#   make test-cuemu      the same tests on the CPU, on the CUDA emulator (tools/cuemu)
#
# Every .cu file under autograd/cuda/ is compiled whenever nvcc is found,
# and run on the emulator by test-cuemu, so the CUDA code never rots on
# machines without a GPU.

SANITIZE ?= 0
# CUEMU=1: the CUDA backend built against the CPU emulator of tools/cuemu
# instead of nvcc (see `make test-cuemu`), in its own build directory.
CUEMU ?= 0
ifeq ($(CUEMU),1)
BUILD_SUFFIX := -cuemu
endif
ifeq ($(SANITIZE),1)
BUILD ?= build$(BUILD_SUFFIX)-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build$(BUILD_SUFFIX)
SANFLAGS :=
endif

CC ?= cc
OPT ?= -O2
# HDF5 (token shards): Debian's serial build.
HDF5_CFLAGS ?= -I/usr/include/hdf5/serial
HDF5_LIBS ?= -lhdf5_serial
# MPI (data and tensor parallelism): Open MPI's compile and link flags when
# mpicc exists (MPICC= builds without MPI: a world of one process).
MPICC ?= $(shell command -v mpicc 2>/dev/null)
ifneq ($(MPICC),)
MPI_CFLAGS ?= $(shell $(MPICC) --showme:compile 2>/dev/null) -DHUG_MPI
MPI_LIBS ?= $(shell $(MPICC) --showme:link 2>/dev/null)
endif
# cairo (hug plot's PNG and SVG figures): Debian's libcairo2-dev.
CAIRO_CFLAGS ?= $(shell pkg-config --cflags cairo 2>/dev/null)
CAIRO_LIBS ?= $(or $(shell pkg-config --libs cairo 2>/dev/null),-lcairo)
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -fopenmp -MMD -MP -I. $(HDF5_CFLAGS) $(MPI_CFLAGS) \
	$(CAIRO_CFLAGS)
CFLAGS += $(CFLAGS_BASE) $(SANFLAGS)
LDLIBS := -lopenblas -lcjson -lonig -lutf8proc $(HDF5_LIBS) $(CAIRO_LIBS) $(MPI_LIBS) -lpthread -lm
LDFLAGS += -fopenmp $(SANFLAGS)

# CUDA: compiled when nvcc exists (NVCC= to disable).
NVCC ?= $(shell command -v nvcc 2>/dev/null)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_ARCHS ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
NVCCFLAGS ?= -O2 -std=c++17 $(CUDA_ARCHS) -Xcompiler -Wall,-Wextra -I.

LIB_DIRS := base autograd autograd/cpu io nn optim data parallel peft train
LIB_SRC := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRC := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/*.c)
CU_SRC := $(wildcard autograd/cuda/*.cu)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)

# TensorBoard's event messages (train/tensorboard.proto): C code generated
# by protoc-c (Debian's protobuf-c-compiler) into BUILD/gen/, part of the
# library; sources include it as "train/tensorboard.pb-c.h".
PROTOC_C ?= protoc-c
PROTO_SRC := train/tensorboard.proto
PROTO_HDR = $(PROTO_SRC:%.proto=$(1)/gen/%.pb-c.h)
LIB_OBJ += $(PROTO_SRC:%.proto=$(BUILD)/obj/gen/%.pb-c.o)
CFLAGS += -I$(BUILD)/gen
LDLIBS += -lprotobuf-c
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/obj/%.o)

ifeq ($(CUEMU),1)
# Each .cu and .cuh file is rewritten by cu2cpp (launches and __shared__
# declarations) into $(BUILD)/cuemu/ and compiled by the host C++ compiler
# against tools/cuemu/include's stand-ins for the CUDA, cuBLAS and NCCL
# headers; the emulator's own files join the library.
CUEMU_DIR := tools/cuemu
CU2CPP := $(BUILD)/bin/cu2cpp
CUH_SRC := $(wildcard autograd/cuda/*.cuh)
CUH_GEN := $(CUH_SRC:%=$(BUILD)/cuemu/%)
CUEMU_SRC := $(wildcard $(CUEMU_DIR)/*.cpp)
CU_OBJ := $(CU_SRC:%.cu=$(BUILD)/obj/%.o) $(CUEMU_SRC:%.cpp=$(BUILD)/obj/%.o)
# Floating point of the emulated kernels: no contraction by default (the
# rounding the CPU backend has); CUEMU_FPFLAGS='-mfma -ffp-contract=fast'
# contracts a * b + c into FMAs as nvcc does (in a BUILD of its own).
CUEMU_FPFLAGS ?= -ffp-contract=off
CUEMU_CXXFLAGS := -std=c++17 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra $(CUEMU_FPFLAGS) -MMD -MP \
	-I$(CUEMU_DIR)/include -Iautograd/cuda -I. $(MPI_CFLAGS) -DOMPI_SKIP_MPICXX=1 $(SANFLAGS)
CFLAGS += -DHUG_CUDA -DHUG_CUEMU -I$(CUEMU_DIR)/include
LDLIBS += -lstdc++

$(CU2CPP): $(CUEMU_DIR)/cu2cpp.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -Wall -Wextra $< -o $@

# the rewritten sources stay (make would delete them as intermediates)
.SECONDARY: $(CU_SRC:%=$(BUILD)/cuemu/%) $(CUH_GEN) $(BUILD)/cuemu/$(CUEMU_DIR)/selftest.cu
$(BUILD)/cuemu/%: % $(CU2CPP)
	@mkdir -p $(dir $@)
	$(CU2CPP) $< $@

# every rewritten .cu file: the backend's, and tools/cuemu/selftest.cu (the
# planted bugs of tests/test_cuemu.c, in the test binary only)
TEST_OBJ += $(BUILD)/obj/$(CUEMU_DIR)/selftest.o
$(BUILD)/obj/%.o: $(BUILD)/cuemu/%.cu $(CUH_GEN)
	@mkdir -p $(dir $@)
	$(CXX) $(CUEMU_CXXFLAGS) -x c++ -c $< -o $@

$(BUILD)/obj/$(CUEMU_DIR)/%.o: $(CUEMU_DIR)/%.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CUEMU_CXXFLAGS) -c $< -o $@
else ifneq ($(NVCC),)
CU_OBJ := $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
CFLAGS += -DHUG_CUDA
# NCCL (device collectives, parallel/comm_nccl.c, built when MPI is on too):
# CUDA_HOME's copy or the system's; NCCL_CFLAGS/NCCL_LIBS name another
# (e.g. NCCL_CFLAGS=-I/opt/nccl/include NCCL_LIBS="-L/opt/nccl/lib -lnccl").
NCCL_CFLAGS ?= -I$(CUDA_HOME)/include
NCCL_LIBS ?= -lnccl
LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 $(NCCL_LIBS) -lcublas -lcudart -lstdc++
$(BUILD)/obj/parallel/comm_nccl.o: CFLAGS += $(NCCL_CFLAGS)
else
CU_OBJ :=
endif

MPI_TEST_SRC := $(wildcard tests/mpi/*.c)
MPI_TEST_OBJ := $(MPI_TEST_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/tests/bloom_util.o \
	$(BUILD)/obj/tests/ag_env.o $(BUILD)/obj/tests/recompute_util.o
MPI_TESTS := $(BUILD)/bin/hug_mpi_tests

LIB := $(BUILD)/lib/libhug.a
HUG := $(BUILD)/bin/hug
TESTS := $(BUILD)/bin/hug_tests

.PHONY: all test clean
all: $(HUG) $(LIB)

# sqrt without errno, so the AdamW loop vectorises (same bits: IEEE sqrt).
$(BUILD)/obj/autograd/cpu/optim.o: CFLAGS += -fno-math-errno

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

%/gen/train/tensorboard.pb-c.c %/gen/train/tensorboard.pb-c.h: train/tensorboard.proto
	@mkdir -p $*/gen
	$(PROTOC_C) --c_out=$*/gen $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# the first build needs the generated header before the -MMD files say so
$(BUILD)/obj/train/tensorboard.o $(BUILD)/obj/tests/test_tensorboard.o: \
	$(call PROTO_HDR,$(BUILD))

ifneq ($(CUEMU),1)
$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@
endif

$(LIB): $(LIB_OBJ) $(CU_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(HUG): $(CLI_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

$(MPI_TESTS): $(MPI_TEST_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(MPI_TEST_OBJ) $(LIB) $(LDLIBS) -o $@

$(TESTS): $(TEST_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(TEST_OBJ) $(LIB) $(LDLIBS) -o $@

# Tests run with two OpenMP threads so results do not depend on the
# machine; the runner prints "N passed, N failed" last.
test: $(TESTS) $(HUG) $(MPI_TESTS)
	scripts/check-layers.sh .
	OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 HUG_BIN=$(HUG) HUG_MPI_TESTS=$(MPI_TESTS) $(TESTS)

# The GPU tests (names containing "cuda") with HUG_REQUIRE_GPU=1, so a
# missing device fails them instead of skipping. Run on a machine with a GPU.
.PHONY: test-gpu
test-gpu: $(TESTS) $(HUG)
	HUG_REQUIRE_GPU=1 OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 HUG_BIN=$(HUG) ./$(TESTS) cuda

# The same GPU tests on the CPU, with the CUDA backend built against the
# emulator of tools/cuemu (its README says what it checks and what only a
# GPU can): `make test-cuemu` builds into build-cuemu/ (build-cuemu-san/
# with SANITIZE=1) and runs them, with 4 emulated GPUs for the multi-GPU
# layouts.
CUEMU_BUILD := build-cuemu$(if $(filter 1,$(SANITIZE)),-san)
.PHONY: test-cuemu
test-cuemu:
	$(MAKE) CUEMU=1 SANITIZE=$(SANITIZE) $(CUEMU_BUILD)/bin/hug_tests $(CUEMU_BUILD)/bin/hug \
		$(CUEMU_BUILD)/bin/hug_mpi_tests
	CUEMU_DEVICES=4 HUG_REQUIRE_GPU=1 OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 \
		HUG_BIN=$(CUEMU_BUILD)/bin/hug HUG_MPI_TESTS=$(CUEMU_BUILD)/bin/hug_mpi_tests \
		./$(CUEMU_BUILD)/bin/hug_tests cuda

clean:
	rm -rf build build-san build-cuemu* build-fuzz

# Benchmarks: each bench/bench_<what>.c is one program, linked against
# libhug into $(BUILD)/bin/bench_<what>. `make bench` builds them all.
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bin/%)

.PHONY: bench
bench: $(BENCH_BIN)

$(BENCH_BIN): $(BUILD)/bin/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

-include $(LIB_OBJ:.o=.d) $(CU_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(MPI_TEST_OBJ:.o=.d) \
	 $(BENCH_SRC:%.c=$(BUILD)/obj/%.d)

# Fuzzing: libFuzzer harnesses (tests/fuzz/fuzz_<target>.c) for hug's
# parsers of untrusted files, built with clang under ASan + UBSan against
# the library sources (no CUDA, no MPI, no OpenMP) in build-fuzz/.
# `make fuzz FUZZ_SECONDS=N` runs each for N seconds from a corpus seeded
# by tests/fixtures and tests/fuzz/corpus/ and fails on any finding.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD := build-fuzz
FUZZ_TARGETS := safetensors recipe tokenizer config adapter_config shard metrics
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Wno-unknown-pragmas \
	-Wno-source-uses-openmp -DHUG_TARGET_CLONES= -MMD -MP -I. $(HDF5_CFLAGS) $(CAIRO_CFLAGS) $(FUZZ_SAN)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_CFLAGS += -I$(FUZZ_BUILD)/gen
$(FUZZ_BUILD)/obj/train/tensorboard.o: $(call PROTO_HDR,$(FUZZ_BUILD))
FUZZ_BIN := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/bin/fuzz_%)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/lib/libhug.a: $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BIN): $(FUZZ_BUILD)/bin/%: $(FUZZ_BUILD)/obj/tests/fuzz/%.o $(FUZZ_BUILD)/lib/libhug.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) $< $(FUZZ_BUILD)/lib/libhug.a \
		-lopenblas -lcjson -lonig -lutf8proc $(HDF5_LIBS) $(CAIRO_LIBS) -lpthread -lm -o $@

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BIN)
fuzz: $(FUZZ_BIN)
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.d)

# The main job: build the multilingual demo corpus (Debian's fortune
# packages in nine languages), train a small BLOOM on the CPU for a few
# minutes (resuming if a run is there), print samples, plot the curves.
.PHONY: demo
demo: $(HUG)
	HUG=$(HUG) bash data/demo_corpus.sh data/demo
	./$(HUG) train recipes/demo-cpu.json --resume
	./$(HUG) plot runs/demo-cpu
