# tests/vm: a small VM with pure cgroup v2 (Debian's kernel under qemu, TCG) for the
# cgroup-dependent tests. Included by the top Makefile (after apt_ensure and $(B) are defined).
#
#   make deps-vm     install qemu-system-x86 (checked with dpkg first)
#   make vm          build build/vm: kernel (apt-get download, unpacked, not installed) + initramfs
#   make test-vm     tests/integration/test_vm.py (cgroup v2 checks, init as the VM's PID 1, and
#                    the pytest selection below inside the VM)
#   make vm-pytest   only the pytest selection inside the VM: VM_PYTEST='-m cgroup tests/integration'
#   make test-appliance  the supervisor as the VM's PID 1: boot, services, poweroff, reboot
#                    (tests/integration/test_appliance.py, pytest -m appliance)
#   make test-systemd    the .deb's contents (tests/integration/test_deb.py), then corral.service
#                    under real systemd: a Debian 12 root (mmdebstrap, cached
#                    in build/sysvm) booted with systemd as PID 1, the .deb installed, systemctl
#                    start/reload/stop, the watchdog, Delegate=yes, and the 100-service bench
#                    against 100 systemd units (tests/integration/test_systemd.py, minutes)
#   tests/vm/run-in-vm [--timeout S] [--pid1] [--root DIR] -- CMD ARGS...   anything else
#
# `make test` builds the VM too (test-build: vm-try), but a machine where that fails still
# tests: test_vm.py then skips (qemu missing) or fails with the reason.

VM_PKGS   := qemu-system-x86 busybox-static python3
VM_PYTEST ?= -m cgroup tests/integration tests/security
VM_PYTEST_TIMEOUT ?= 900

SYSVM_PKGS := mmdebstrap

.PHONY: deps-vm vm vm-try test-vm vm-pytest test-appliance test-systemd
deps-vm:
	$(call apt_ensure,$(VM_PKGS))

vm: deps-vm
	tests/vm/mkvm $(B)/vm

vm-try:
	@$(MAKE) --no-print-directory deps-vm vm || \
	  echo "tests/vm: could not set up the VM; tests/integration/test_vm.py will tell why" >&2

test-build: vm-try

test-vm: vm $(B)/init
	/usr/bin/python3 -m pytest -p no:cacheprovider -v tests/integration/test_vm.py

vm-pytest: vm test-build
	tests/vm/run-in-vm --timeout $(VM_PYTEST_TIMEOUT) -e CRTEST_SLOW=$${CRTEST_SLOW:-5} -- \
	  /usr/bin/python3 -m pytest -p no:cacheprovider $(VM_PYTEST)

test-appliance: vm all rootfs
	/usr/bin/python3 -m pytest -p no:cacheprovider -v -m appliance tests/integration/test_appliance.py

test-systemd: vm deb
	$(call apt_ensure,$(SYSVM_PKGS))
	tests/vm/mksysvm $(B)/sysvm
	/usr/bin/python3 -m pytest -p no:cacheprovider -v tests/integration/test_deb.py
	/usr/bin/python3 -m pytest -p no:cacheprovider -v -s -m systemd_vm tests/integration/test_systemd.py
