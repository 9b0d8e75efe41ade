# corral — build, deps, test, bench, install.
#
# Layout of build/:
#   build/init, build/supervisor, build/svctl   release binaries (init: static, musl)
#   build/obj/..., build/lib/LAYER.a            the supervisor's objects, one archive per layer
#   build/asan/...                              the same, glibc + ASan + UBSan (used by tests)
#   build/test/...                              test helpers (workload: static, musl) and unit tests
#   build/rootfs/                               busybox root filesystem (make rootfs)
#   build/image/                                an OCI image layout of it (make image)
#   build/vm/, build/appliance/, build/kernel-deb/  the test VM, the bootable appliance (make
#                                               appliance) and the Debian kernel .deb they share
# Sources are picked up by wildcard: a new file in init/, supervisor/ (or a folder of it), shared/ or
# tests/unit/test_*.c needs no edit here (a new folder of supervisor/ is a new layer: see LAYERS).

PREFIX  ?= /usr/local
DESTDIR ?=
B       := build

CC      ?= gcc
MUSLCC  ?= musl-gcc
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CSTD    := -std=gnu11 -D_GNU_SOURCE
CFLAGS  ?= -O2 -g
# CPPFLAGS and LDFLAGS (empty here) reach the release supervisor and svctl: the package build
# (contrib/debian/rules) passes Debian's hardening flags through them.
CPPFLAGS ?=
LDFLAGS  ?=
SANFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.1.0)
DEFS    := -DCORRAL_VERSION='"$(VERSION)"'

SHARED_SRC := $(wildcard shared/*.c)
INIT_SRC   := $(wildcard init/*.c)
SUP_ALL    := $(wildcard supervisor/*.c supervisor/*/*.c)
SVCTL_SRC  := $(wildcard supervisor/svctl/*.c)
SUP_SRC    := $(filter-out $(SVCTL_SRC),$(SUP_ALL))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
HDRS       := $(wildcard shared/*.h init/*.h supervisor/*.h supervisor/*/*.h)

# ---- the supervisor's layers ----------------------------------------------------------------
# Each folder of supervisor/ is a static archive, build/lib/LAYER.a (build/asan/lib/ for the
# sanitizer build); the files at the top of supervisor/ are supervisor.a (but main.c, and
# log.c, which is log.a: every layer may log). shared/ is shared.a. LINK_<layer> is a layer
# with everything it uses, in link order: an archive that calls one listed before it does not
# link, so the order is the dependency rule (`make check-layers` checks the includes).
LAYERS := supervisor api service spawn io config net image policy cgroup pid1 log
LAYER_SRC_supervisor := $(filter-out supervisor/main.c supervisor/log.c,$(wildcard supervisor/*.c))
LAYER_SRC_log        := supervisor/log.c
$(foreach l,api service spawn io config net image policy cgroup pid1,$(eval LAYER_SRC_$(l) := $(wildcard supervisor/$(l)/*.c)))
# policy/ also holds the default seccomp programs, compiled at build time (see below).
LAYER_SRC_policy += $(B)/gen/seccomp_default.c
LINK_log        := log
LINK_pid1       := pid1 log
LINK_cgroup     := cgroup
LINK_policy     := policy
LINK_net        := net log
LINK_image      := image
LINK_config     := config net image policy cgroup log
LINK_io         := io log
LINK_spawn      := spawn cgroup
LINK_service    := service spawn io config net image policy cgroup log
LINK_api        := api $(LINK_service)
LINK_supervisor := supervisor pid1 $(LINK_api)
# What each unit test links besides shared.a; a test not named here links every layer.
UNIT_LINK_test_cgroup    := $(LINK_cgroup)
UNIT_LINK_test_config    := $(LINK_config)
UNIT_LINK_test_plan      := $(LINK_config)
UNIT_LINK_test_ctl_proto := $(LINK_service)
# The lifecycle table with a fake container: service/ without cgroup/ or spawn/ (it would not
# link if fsm.c reached for them).
UNIT_LINK_test_fsm       := service io log
UNIT_LINK_test_state_line := service
UNIT_LINK_test_output    := $(LINK_io)
UNIT_LINK_test_logs      := $(LINK_io)
UNIT_LINK_test_watch     := $(LINK_io)
UNIT_LINK_test_net       := $(LINK_net)
UNIT_LINK_test_pid1      := $(LINK_pid1)
UNIT_LINK_test_spec      :=
UNIT_LINK_test_restart   :=
UNIT_LINK_test_alloc     :=
UNIT_LINK_test_units     :=
UNIT_LINK_test_seccomp   := $(LINK_policy)
UNIT_LINK_test_xmlrpc    := api log
unit_link = $(if $(filter undefined,$(origin UNIT_LINK_$(1))),$(LINK_supervisor),$(UNIT_LINK_$(1)))

SUP_LIBS   := -luv -linih -lseccomp -lcap -ljson-c -larchive -lnettle -lexpat
# The released supervisor links libuv, inih, libseccomp, libcap, json-c and image/'s libarchive
# (tar, gzip, zstd, with what its objects call), nettle (sha256, sha1, base64) and expat (api/'s
# XML-RPC requests) from their Debian .a files.
# It is a static PIE: linked against glibc dynamically it spent ~1.1 ms of every `supervisor
# run` (~10%, bench 1a) and of every re-exec in the loader (mapping and relocating libc,
# resolving its symbols, the page faults of both). Networking needs libmnl and libnftables,
# which Debian ships only as shared libraries: they are dlopen'ed on first use (net/netlink.c,
# net/nft.c) and bring a glibc of their own (libc.so.6, the same version: the package depends
# on it). Nothing crosses between the two C libraries: libmnl only builds and reads messages
# (the socket and its calls, and so errno, are ours), libnftables keeps its memory and its
# output to itself. Loading them costs a bridge's first container ~0.6 ms more than in a
# dynamic supervisor. The linker's warnings about dlopen and the name service (getpwnam:
# the supervisor asks the files and DNS only, built into the static glibc: main.c) are
# expected and filtered out (ld_quiet).
# --gc-sections: libarchive.a's tar writer (export oci's init
# layer) sits in one object with its table of every format, whose xar and 7-Zip writers call
# libxml2, liblzma and libbz2; nothing reaches them, and their sections are dropped unlinked.
SUP_STATIC := -static-pie -fPIE -Wl,--gc-sections
SUP_STATIC_LIBS := -l:libuv_a.a -l:libinih.a -l:libseccomp.a -l:libcap.a -l:libjson-c.a \
                   -l:libarchive.a -l:libnettle.a -l:libacl.a -l:libzstd.a -l:libz.a -l:libexpat.a -lpthread
BINS       := $(B)/init $(if $(SUP_SRC),$(B)/supervisor) $(if $(SVCTL_SRC),$(B)/svctl)
ASAN_BINS  := $(B)/asan/init $(if $(SUP_SRC),$(B)/asan/supervisor) $(if $(SVCTL_SRC),$(B)/asan/svctl)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(B)/test/unit/%,$(UNIT_SRC))

.PHONY: all deps deps-test deps-bench test bench install lint rootfs image clean asan test-build
all: deps-build $(BINS)

# ---- Debian packages ----------------------------------------------------------------------
# Checked with dpkg first, so this costs nothing when everything is there. apt-get update runs
# once, only when something is missing.
BUILD_PKGS := gcc make libc6-dev musl-tools libuv1-dev libinih-dev libseccomp-dev libcap-dev libjson-c-dev libmnl-dev libnftables-dev pkg-config \
              libarchive-dev nettle-dev libzstd-dev libacl1-dev zlib1g-dev libexpat1-dev
TEST_PKGS  := libcmocka-dev python3 python3-pytest busybox-static util-linux iproute2 nftables valgrind procps bindfs \
              supervisor \
              golang-github-containers-common umoci skopeo zstd podman runc crun catatonit python3-yaml python3-kubernetes \
              chromium chromium-driver python3-selenium fcgiwrap
BENCH_PKGS := tini dumb-init catatonit
LINT_PKGS  := cppcheck clang-tidy
define apt_ensure
	@missing=""; for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to install:$$missing" >&2; exit 1; fi; \
	  mkdir -p /run/lock && exec 9>/run/lock/corral-apt.lock && flock 9; \
	  guard=""; if [ ! -e /usr/sbin/policy-rc.d ]; then guard=/usr/sbin/policy-rc.d; \
	    printf '#!/bin/sh\nexit 101\n' > $$guard && chmod 755 $$guard; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  rc=$$?; [ -z "$$guard" ] || rm -f $$guard; exit $$rc; fi
endef
# (policy-rc.d, only for the install and only if the machine has none: packages such as
# supervisor must not start their daemons here; the tests start what they need themselves.
# One install at a time: `make -j2` on a fresh machine ran two, and the second apt-get failed
# on dpkg's lock.)
.PHONY: deps-build deb
deps-build:
	$(call apt_ensure,$(BUILD_PKGS))
deps: deps-build
	$(call apt_ensure,$(TEST_PKGS))
deps-test: deps
deps-bench: deps
	$(call apt_ensure,$(BENCH_PKGS))

# ---- init: static, musl ------------------------------------------------------------------
# musl-gcc cannot see /usr/include, so it gets a folder holding only inih's header.
$(B)/musl-include/ini.h: | deps-build
	@mkdir -p $(@D)
	cp /usr/include/ini.h $@

# -z noseparate-code: headers, code and read-only data in one mapping, so that the kernel's
# fault-around maps them in two faults rather than four at every container's start (a fault
# costs ~15 us of CPU on this kind of virtual machine).
INIT_MUSL_FLAGS := $(CSTD) $(WARN) -DCR_INIT_ALLOC -Os -static -ffunction-sections -fdata-sections -Wl,--gc-sections -Wl,-z,noseparate-code \
                   -fno-asynchronous-unwind-tables -fno-stack-protector -I$(B)/musl-include -Ishared
$(B)/init: $(INIT_SRC) $(SHARED_SRC) $(HDRS) $(B)/musl-include/ini.h
	@mkdir -p $(@D)
	$(MUSLCC) $(INIT_MUSL_FLAGS) $(DEFS) -o $@ $(INIT_SRC) $(SHARED_SRC) /usr/lib/x86_64-linux-gnu/libinih.a
	strip $@

$(B)/asan/init: $(INIT_SRC) $(SHARED_SRC) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(SANFLAGS) $(DEFS) -Ishared -o $@ $(INIT_SRC) $(SHARED_SRC) -linih

# A plain glibc build of init for valgrind (which cannot follow a static musl malloc).
$(B)/test/init-vg: $(INIT_SRC) $(SHARED_SRC) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O1 -g $(DEFS) -Ishared -o $@ $(INIT_SRC) $(SHARED_SRC) -linih

# ---- supervisor and svctl -----------------------------------------------------------------
# Objects: build/obj/... (release: PIE, for the static-pie supervisor) and build/asan/obj/...
OBJ_FLAGS      := $(CSTD) $(WARN) $(CPPFLAGS) $(CFLAGS) -fPIE $(DEFS)
ASAN_OBJ_FLAGS := $(CSTD) $(WARN) $(SANFLAGS) $(DEFS)
$(B)/obj/%.o: %.c $(HDRS) | deps-build
	@mkdir -p $(@D)
	$(CC) $(OBJ_FLAGS) -Ishared -Isupervisor -c -o $@ $<
$(B)/asan/obj/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ASAN_OBJ_FLAGS) -Ishared -Isupervisor -c -o $@ $<
# svctl sees shared/ only: the client includes nothing of the supervisor.
$(B)/obj/supervisor/svctl/%.o: supervisor/svctl/%.c $(HDRS) | deps-build
	@mkdir -p $(@D)
	$(CC) $(OBJ_FLAGS) -Ishared -c -o $@ $<
$(B)/asan/obj/supervisor/svctl/%.o: supervisor/svctl/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ASAN_OBJ_FLAGS) -Ishared -c -o $@ $<

# The default seccomp profile's programs, compiled by libseccomp once here rather than in
# every `supervisor run` (~1.5 ms each): a generator built from policy/'s own sources writes
# them as C arrays (tests/unit/test_seccomp.c checks they equal a fresh compile).
SECCOMP_GEN_SRC := supervisor/policy/gen/seccomp_gen.c supervisor/policy/syscall_filter.c \
                   supervisor/policy/seccomp_profile.c supervisor/policy/caps.c
$(B)/gen/seccomp_gen: $(SECCOMP_GEN_SRC) $(HDRS) | deps-build
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O1 $(DEFS) -Ishared -Isupervisor -o $@ $(SECCOMP_GEN_SRC) \
	  -lseccomp -lcap -ljson-c
$(B)/gen/seccomp_default.c: $(B)/gen/seccomp_gen
	$< > $@.tmp && mv $@.tmp $@

# $(call archive,DIR,NAME,SOURCES): DIR/lib/NAME.a from DIR/obj/SOURCES.
define archive
$(1)/lib/$(2).a: $(patsubst %.c,$(1)/obj/%.o,$(3))
	@mkdir -p $$(@D)
	rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach l,$(LAYERS),$(eval $(call archive,$(B),$(l),$(LAYER_SRC_$(l)))))
$(foreach l,$(LAYERS),$(eval $(call archive,$(B)/asan,$(l),$(LAYER_SRC_$(l)))))
$(eval $(call archive,$(B),shared,$(SHARED_SRC)))
$(eval $(call archive,$(B)/asan,shared,$(SHARED_SRC)))
libs = $(patsubst %,$(1)/lib/%.a,$(2)) $(1)/lib/shared.a

# The linker's output without its expected warnings about a static glibc (see SUP_STATIC).
ld_quiet = 2>$@.ld || { cat $@.ld >&2; rm -f $@.ld; exit 1; }; \
	grep -v -e 'requires at runtime the shared libraries from the glibc version' \
	        -e ': in function `' $@.ld >&2; rm -f $@.ld
$(B)/supervisor: $(B)/obj/supervisor/main.o $(call libs,$(B),$(LINK_supervisor))
	$(CC) $(CFLAGS) $(LDFLAGS) $(SUP_STATIC) -o $@ $^ $(SUP_STATIC_LIBS) $(ld_quiet)
# static-pie like the supervisor: both run in any image (a busybox container has no glibc)
# svctl stays a static PIE (it links inih alone): it runs in any image.
$(B)/svctl: $(patsubst %.c,$(B)/obj/%.o,$(SVCTL_SRC)) $(B)/lib/shared.a
	$(CC) $(CFLAGS) $(LDFLAGS) -static-pie -fPIE -o $@ $^ -l:libinih.a
$(B)/asan/supervisor: $(B)/asan/obj/supervisor/main.o $(call libs,$(B)/asan,$(LINK_supervisor))
	$(CC) $(SANFLAGS) -o $@ $^ $(SUP_LIBS)
$(B)/asan/svctl: $(patsubst %.c,$(B)/asan/obj/%.o,$(SVCTL_SRC)) $(B)/asan/lib/shared.a
	$(CC) $(SANFLAGS) -o $@ $^ -linih
asan: $(ASAN_BINS)

# ---- tests ----------------------------------------------------------------------------------
# The one fake workload every test uses; static so it also runs inside the busybox rootfs.
$(B)/test/workload: tests/helper/workload.c
	@mkdir -p $(@D)
	$(MUSLCC) $(CSTD) $(WARN) -O2 -static -o $@ $<

# A listen() that waits when told to (tests/faults/test_socket_window.py); LD_PRELOADed into the
# ASan supervisor (the static one takes no preload).
$(B)/test/holdlisten.so: tests/helper/holdlisten.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -shared -fPIC -o $@ $< -ldl

# The escape suite's attacker (tests/security): static, so it runs in any rootfs.
$(B)/test/probe: tests/security/probe.c
	@mkdir -p $(@D)
	$(MUSLCC) $(CSTD) $(WARN) -O2 -static -o $@ $<

# A unit test links only the archives of the layers it tests (unit_link above).
.SECONDEXPANSION:
$(B)/test/unit/%: tests/unit/%.c $$(call libs,$(B)/asan,$$(call unit_link,$$*)) $(HDRS) $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) $(SANFLAGS) $(DEFS) -Ishared -Isupervisor -Iinit -o $@ $< \
	  $(call libs,$(B)/asan,$(call unit_link,$*)) -Wl,--as-needed $(SUP_LIBS) -lcmocka

test-build: deps all asan $(B)/test/workload $(B)/test/probe $(B)/test/holdlisten.so $(B)/test/init-vg $(UNIT_BINS) rootfs \
            image

test: test-build
	@tests/run

# The fault-injection suite (tests/faults) whole, slow runs included (make test runs the quick
# ones): here on this machine's cgroups, then its cgroup tests again in the cgroup v2 VM.
FAULTS_PYTEST ?=
.PHONY: test-faults
test-faults: test-build
	/usr/bin/python3 -m pytest -p no:cacheprovider -q tests/faults $(FAULTS_PYTEST)
	$(MAKE) --no-print-directory vm-pytest VM_PYTEST='-m cgroup tests/faults -q $(FAULTS_PYTEST)'

# The flake check (issue 13 item 9): `make test` FLAKE_RUNS times in a row while stress-ng
# (Debian's) loads the machine with FLAKE_STRESS, then every failure and in how many runs.
# FLAKE_TESTS narrows its pytest part (e.g. FLAKE_TESTS='tests/integration/test_logs.py').
# It loads the whole machine for as long as it runs: not for a machine others share.
FLAKE_RUNS ?= 3
FLAKE_STRESS ?= --cpu 4 --io 2
FLAKE_TESTS ?=
.PHONY: flake-check
flake-check: test-build
	$(call apt_ensure,stress-ng)
	tests/flake-check $(FLAKE_RUNS) '$(FLAKE_STRESS)' $(FLAKE_TESTS)

# The include rules of DESIGN.md's Layout (tests/run counts it as one test too).
.PHONY: check-layers
check-layers:
	@tests/check-layers

# ---- root filesystem ------------------------------------------------------------------------
rootfs: $(B)/rootfs/.stamp
$(B)/rootfs/.stamp: tests/mkrootfs $(B)/test/workload | deps
	tests/mkrootfs $(B)/rootfs $(B)/test/workload
	@touch $@

# The same root as an OCI image (umoci), for conf/image.ini.
image: $(B)/image/index.json
$(B)/image/index.json: tests/mkimage $(B)/rootfs/.stamp | deps
	tests/mkimage $(B)/rootfs $(B)/image

# ---- the demo: the README's run command ---------------------------------------------------
.PHONY: demo
demo: all rootfs
	$(B)/supervisor -c conf/demo.ini

# ---- bench, lint, install ---------------------------------------------------------------------
-include bench/bench.mk
-include tests/vm/vm.mk
-include tests/fuzz/fuzz.mk

lint: deps
	$(call apt_ensure,$(LINT_PKGS))
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr -D_GNU_SOURCE -Ishared -Isupervisor init supervisor shared
	clang-tidy --quiet $(INIT_SRC) $(SUP_SRC) $(SVCTL_SRC) $(SHARED_SRC) -- $(CSTD) $(DEFS) -Ishared -Isupervisor -Iinit

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/corral \
	           $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0755 $(B)/init $(DESTDIR)$(PREFIX)/libexec/corral/init
	$(if $(SUP_SRC),install -m 0755 $(B)/supervisor $(DESTDIR)$(PREFIX)/sbin/supervisor)
	$(if $(SVCTL_SRC),install -m 0755 $(B)/svctl $(DESTDIR)$(PREFIX)/bin/svctl)
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0644 contrib/bash-completion/svctl $(DESTDIR)$(PREFIX)/share/bash-completion/completions/svctl
	# init.8 is installed as corral-init.8: the system's own init has an init.8.
	for m in man/*.8; do n=$$(basename "$$m"); [ "$$n" = init.8 ] && n=corral-init.8; \
	  install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man8/$$n; done
	for m in man/*.5; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man5/; done; true

# The Debian package, built by Debian's tools: contrib/debian/ is the debian/ folder (debhelper
# compat 13). `make deb` copies what the build needs into a staging source tree, build/deb/src
# (the unit from contrib/systemd/ as debian/corral.service), runs dpkg-buildpackage there (it
# builds with `make all` and `make install PREFIX=/usr`), moves the .deb, .buildinfo and .changes
# to build/ and runs lintian, which fails the target on an error. Nothing is written into the
# source tree. Output: build/corral_VERSION_ARCH.deb.
DEB_PKGS := build-essential debhelper dpkg-dev lintian
DEB_SRC  := $(B)/deb/src
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_FILE = $(B)/corral_$(VERSION)_$(DEB_ARCH).deb
.PHONY: deps-deb
deps-deb: deps-build
	$(call apt_ensure,$(DEB_PKGS))
deb: deps-deb
	@cl=$$(dpkg-parsechangelog -l contrib/debian/changelog -SVersion); [ "$$cl" = "$(VERSION)" ] || \
	  { echo "contrib/debian/changelog: its newest entry is $$cl, VERSION says $(VERSION): add an entry" >&2; exit 1; }
	rm -rf $(B)/deb $(B)/corral_*.deb $(B)/corral_*.changes $(B)/corral_*.buildinfo
	mkdir -p $(DEB_SRC)
	cp -a Makefile VERSION README.md init supervisor shared man contrib $(DEB_SRC)/
	cp -a contrib/debian $(DEB_SRC)/debian
	cp contrib/systemd/corral.service $(DEB_SRC)/debian/corral.service
	cd $(DEB_SRC) && dpkg-buildpackage --build=binary --no-sign
	mv $(B)/deb/corral_$(VERSION)_* $(B)/
	lintian --fail-on error $(B)/corral_$(VERSION)_$(DEB_ARCH).changes
	@echo "built $(DEB_FILE)"

clean:
	rm -rf $(B)
