# Benchmarks: `make bench` runs them all, each printing its figures beside the anchors'.
# Included by the top Makefile. Harnesses are glibc programs built into $(B)/bench/.

# bench/common/: helpers both the init and the supervisor harness compile in.
BENCH_COMMON_SRC := $(wildcard bench/common/*.c)
BENCH_COMMON_HDR := $(wildcard bench/common/*.h)
BENCH_INIT_SRC := $(wildcard bench/init/*.c) $(BENCH_COMMON_SRC)
BENCH_INIT_HDR := $(wildcard bench/init/*.h) $(BENCH_COMMON_HDR)
# Extra arguments for the init harness, e.g. BENCH_INIT_ARGS='--storm 5000 --rounds 1'.
BENCH_INIT_ARGS ?=

.PHONY: bench bench-init
bench: deps-bench $(B)/init bench-init

# Static, so exec'ing it as the workload and forking 20,000 orphans from it stay cheap.
$(B)/bench/initbench: $(BENCH_INIT_SRC) $(BENCH_INIT_HDR) | deps-build
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -static -o $@ $(BENCH_INIT_SRC) -lm

bench-init: deps-bench $(B)/init $(B)/bench/initbench
	$(B)/bench/initbench --ours $(B)/init --log $(B)/bench/initbench.log $(BENCH_INIT_ARGS)

# ---- bench-supervisor: our supervisor against crun/runc and s6/runit/supervisord ----------
BENCH_SUP_SRC := $(wildcard bench/supervisor/*.c) $(BENCH_COMMON_SRC)
BENCH_SUP_HDR := $(wildcard bench/supervisor/*.h) $(BENCH_COMMON_HDR)
BENCH_SUP_PKGS := crun runc s6 runit supervisor
# Extra arguments for the supervisor harness, e.g. BENCH_SUP_ARGS=--quick.
BENCH_SUP_ARGS ?=

.PHONY: bench-supervisor deps-bench-supervisor
bench: bench-supervisor
deps-bench-supervisor: deps
	$(call apt_ensure,$(BENCH_SUP_PKGS))

# Static: it is also the run file of every s6/runit service (one exec into the workload).
# The bare floor of 2a/2b makes ours' default containers with ours' own pieces: the seccomp
# filter as compiled at build time, the device rules, lo up.
BENCH_SUP_OURS := $(B)/gen/seccomp_default.c supervisor/cgroup/devices.c shared/loopback.c
$(B)/bench/supbench: $(BENCH_SUP_SRC) $(BENCH_SUP_HDR) $(BENCH_SUP_OURS) | deps-build
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -static -Isupervisor -Ishared -o $@ $(BENCH_SUP_SRC) $(BENCH_SUP_OURS) -lm

bench-supervisor: deps-bench-supervisor $(B)/init $(B)/supervisor rootfs $(B)/bench/supbench
	$(B)/bench/supbench --ours $(B)/supervisor --init $(B)/init --rootfs $(B)/rootfs \
	  --log $(B)/bench/supbench.log $(BENCH_SUP_ARGS)

# ---- bench-logs: log throughput against supervisord, s6-log and svlogd ----------------------
BENCH_LOGS_SRC := $(wildcard bench/logs/*.c)
BENCH_LOGS_PKGS := supervisor s6 runit
# Extra arguments for the log harness, e.g. BENCH_LOGS_ARGS=--quick (256 MiB, one round).
BENCH_LOGS_ARGS ?=

.PHONY: bench-logs deps-bench-logs
bench: bench-logs
deps-bench-logs: deps
	$(call apt_ensure,$(BENCH_LOGS_PKGS))

# Static: it is also the writer, run inside our container and under supervisord.
$(B)/bench/logbench: $(BENCH_LOGS_SRC) | deps-build
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -static -o $@ $(BENCH_LOGS_SRC) -lm

bench-logs: deps-bench-logs $(B)/init $(B)/supervisor $(B)/bench/logbench
	$(B)/bench/logbench --ours $(B)/supervisor --init $(B)/init --log $(B)/bench/logbench.log \
	  $(BENCH_LOGS_ARGS)

# ---- bench-rpc: supervisorctl status (and its XML-RPC call) against corral and supervisord ---
# Extra arguments, e.g. BENCH_RPC_ARGS='--programs 100 --rounds 10'.
BENCH_RPC_ARGS ?=

.PHONY: bench-rpc
bench: bench-rpc
bench-rpc: deps-bench-supervisor $(B)/init $(B)/supervisor
	/usr/bin/python3 bench/rpc/rpcbench.py --ours $(B)/supervisor --init $(B)/init $(BENCH_RPC_ARGS)

# ---- bench-net: throughput over corral's networks against the floor and podman (issue 8) ----
# iperf3 between two services on a bridge and from the host to a published port, against two
# namespaces on a plain veth pair and podman, same run. E.g. BENCH_NET_ARGS='--seconds 3'.
BENCH_NET_PKGS := iperf3 podman runc
BENCH_NET_ARGS ?=

.PHONY: bench-net
bench: bench-net
bench-net: deps-bench $(B)/init $(B)/supervisor rootfs
	$(call apt_ensure,$(BENCH_NET_PKGS))
	/usr/bin/python3 bench/net/netbench.py --ours $(B)/supervisor --init $(B)/init \
	  --rootfs $(B)/rootfs $(BENCH_NET_ARGS)

# ---- bench-images: image containers against podman (issue 9) -------------------------------
# Extra arguments, e.g. BENCH_IMAGES_ARGS='--runs 5 --cold-rounds 1'.
BENCH_IMAGES_ARGS ?=

.PHONY: bench-images
bench: bench-images
bench-images: deps-bench $(B)/init $(B)/supervisor image
	/usr/bin/python3 bench/images/imgbench.py $(BENCH_IMAGES_ARGS)

# ---- bench-appliance: the supervisor as a machine's PID 1 against runit and busybox init ----
# (issue 11) Boots tests/vm's VM 3 times per init (TCG: a few minutes); nothing runs on the
# host's init. Extra arguments, e.g. BENCH_APPLIANCE_ARGS='--boots 5 --plain'.
BENCH_APPLIANCE_PKGS := runit busybox-static
BENCH_APPLIANCE_ARGS ?=

.PHONY: bench-appliance
bench: bench-appliance

# Static: it runs in the guest, started by the boot script just before the init under test.
$(B)/bench/applwatch: bench/appliance/applwatch.c | deps-build
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -static -o $@ $<

bench-appliance: deps-bench vm $(B)/init $(B)/supervisor $(B)/bench/applwatch
	$(call apt_ensure,$(BENCH_APPLIANCE_PKGS))
	/usr/bin/python3 bench/appliance/applbench.py $(BENCH_APPLIANCE_ARGS)
