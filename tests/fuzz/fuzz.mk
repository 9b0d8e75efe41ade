# tests/fuzz: libFuzzer targets for the parsers that read untrusted or hand-written input.
# Included by the top Makefile (after apt_ensure, $(B) and the source lists are defined).
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="config spec"]
#       builds build/fuzz/fuzz_TARGET with clang (-fsanitize=fuzzer,address,undefined) and runs
#       each for FUZZ_SECONDS from a corpus in build/fuzz/corpus/TARGET, seeded from
#       tests/fuzz/seeds/TARGET (and conf/*.ini for config). A crash leaves its input in
#       build/fuzz/crash/TARGET/; once fixed, copy it to tests/fuzz/regress/TARGET/.
#   make test  replays every file in tests/fuzz/regress/TARGET/ through build/test/fuzz/replay_TARGET
#       and runs each build/fuzz/fuzz_TARGET for 3 s from its seeds (test_fuzz_briefly);
#       (the same target with a main() that reads files; gcc, ASan + UBSan), from
#       tests/integration/test_fuzz_regress.py.
#
# Targets: config (the loader with includes, no machine checks), spec (init's spec reader,
# and the writer's round trip), events (init's event lines as the supervisor reads them),
# ctl (the control protocol, requests and responses), seccomp (a Docker/OCI JSON profile, as
# `seccomp = FILE` is compiled), xmlrpc (an XML-RPC request as /RPC2 reads it, and the writer's
# round trip).

FUZZ_PKGS     := clang
FUZZ_SECONDS  ?= 60
FUZZ_ALL      := config spec events ctl seccomp xmlrpc
FUZZ_TARGETS  ?= $(FUZZ_ALL)
FUZZ_CC       ?= clang
FUZZ_FLAGS    := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                 -fno-sanitize-recover=all
# What each target links: the config loader needs the sources of its layers (LINK_config in the
# Makefile; compiled here, as the fuzzer's flags differ from the archives'), the rest shared/ only.
FUZZ_SRC_config := $(foreach l,$(LINK_config),$(LAYER_SRC_$(l))) $(SHARED_SRC)
FUZZ_LIB_config := $(SUP_LIBS)
FUZZ_SRC_spec   := $(SHARED_SRC)
FUZZ_LIB_spec   := -linih
FUZZ_SRC_events := $(SHARED_SRC)
FUZZ_LIB_events := -linih
FUZZ_SRC_ctl    := $(SHARED_SRC)
FUZZ_LIB_ctl    := -linih
FUZZ_SRC_seccomp := supervisor/policy/seccomp_profile.c supervisor/policy/caps.c
FUZZ_LIB_seccomp := -lseccomp -lcap -ljson-c
FUZZ_SRC_xmlrpc := supervisor/api/xmlrpc.c
FUZZ_LIB_xmlrpc := -lexpat

FUZZ_BINS   := $(patsubst %,$(B)/fuzz/fuzz_%,$(FUZZ_ALL))
REPLAY_BINS := $(patsubst %,$(B)/test/fuzz/replay_%,$(FUZZ_ALL))

.PHONY: deps-fuzz fuzz fuzz-build
deps-fuzz: deps-build
	$(call apt_ensure,$(FUZZ_PKGS))

.SECONDEXPANSION:
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRC_$$*) $(HDRS) | deps-fuzz
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CSTD) $(WARN) $(FUZZ_FLAGS) $(DEFS) -Ishared -Isupervisor -o $@ $< \
	  $(FUZZ_SRC_$*) $(FUZZ_LIB_$*)

$(B)/test/fuzz/replay_%: tests/fuzz/replay_main.c tests/fuzz/fuzz_%.c $$(FUZZ_SRC_$$*) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(SANFLAGS) $(DEFS) -Ishared -Isupervisor -o $@ tests/fuzz/replay_main.c \
	  tests/fuzz/fuzz_$*.c $(FUZZ_SRC_$*) $(FUZZ_LIB_$*)

fuzz-build: $(FUZZ_BINS)

# Each target in turn, one process (the machine is shared); the corpus grows across runs.
fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  c=$(B)/fuzz/corpus/$$t; mkdir -p $$c $(B)/fuzz/crash/$$t; \
	  cp -n tests/fuzz/seeds/$$t/* $$c/ 2>/dev/null || true; \
	  if [ $$t = config ]; then for f in conf/*.ini; do cp -n $$f $$c/conf-$$(basename $$f); done; fi; \
	  echo "== fuzz_$$t: $(FUZZ_SECONDS) s"; \
	  $(B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -max_len=8192 \
	    -timeout=10 -artifact_prefix=$(B)/fuzz/crash/$$t/ $$c tests/fuzz/seeds/$$t 2>&1 | \
	    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' || true; \
	  if ls $(B)/fuzz/crash/$$t/ | grep -q .; then echo "fuzz_$$t: crash inputs in $(B)/fuzz/crash/$$t/"; fi; \
	done

# make test replays the reproducers and fuzzes each target for a few seconds (CI's short run).
test-build: $(REPLAY_BINS) $(FUZZ_BINS)
