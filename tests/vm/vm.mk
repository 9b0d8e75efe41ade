# tests/vm: a small VM with pure cgroup v2 (Debian's kernel under qemu, TCG) for the
# cgroup-dependent tests. Included by the top Makefile (after apt_ensure and $(B) are defined).
#
#   make deps-vm     install qemu-system-x86 (checked with dpkg first)
#   make vm          build build/vm: kernel (apt-get download, unpacked, not installed) + initramfs
#   make test-vm     tests/integration/test_vm.py (cgroup v2 checks, init as the VM's PID 1, and
#                    the pytest selection below inside the VM)
#   make vm-pytest   only the pytest selection inside the VM: VM_PYTEST='-m cgroup tests/integration'
#   make test-appliance  the supervisor as the VM's PID 1: boot, services, poweroff, reboot
#                    (tests/integration/test_appliance.py, pytest -m appliance), and the
#                    bootable appliance below booted with nothing else
#   make appliance   build/appliance/vmlinuz and initramfs.cpio.gz: a machine whose PID 1 is
#                    the supervisor, with conf/appliance.ini (contrib/appliance/mkappliance)
#   make appliance-run   boots it under qemu; its port 80 is 127.0.0.1:$(APPLIANCE_PORT)
#   make test-systemd    the .deb's contents (tests/integration/test_deb.py), then corral.service
#                    under real systemd: a Debian 12 root (mmdebstrap, cached
#                    in build/sysvm) booted with systemd as PID 1, the .deb installed, systemctl
#                    start/reload/stop, the watchdog, Delegate=yes, and the 100-service bench
#                    against 100 systemd units (tests/integration/test_systemd.py, minutes)
#   tests/vm/run-in-vm [--timeout S] [--pid1] [--root DIR] -- CMD ARGS...   anything else
#
# `make test` builds the VM and the appliance too (test-build: vm-try appliance-try), but a
# machine where that fails still tests: test_vm.py and test_appliance.py then skip (qemu
# missing) or fail with the reason.

VM_PKGS   := qemu-system-x86 busybox-static python3
VM_PYTEST ?= -m cgroup tests/integration tests/security
VM_PYTEST_TIMEOUT ?= 1800

SYSVM_PKGS := mmdebstrap

.PHONY: deps-vm vm vm-try test-vm vm-pytest test-appliance test-systemd appliance appliance-run appliance-try
deps-vm:
	$(call apt_ensure,$(VM_PKGS))

vm: deps-vm
	tests/vm/mkvm $(B)/vm

vm-try:
	@$(MAKE) --no-print-directory deps-vm vm || \
	  echo "tests/vm: could not set up the VM; tests/integration/test_vm.py will tell why" >&2

test-build: vm-try appliance-try

# make test boots the appliance too (test_appliance.py); a machine where it cannot be built
# still tests, and those tests then fail with the reason.
appliance-try: all
	@$(MAKE) --no-print-directory appliance || \
	  echo "contrib/appliance: could not build the appliance; test_appliance.py will tell why" >&2

test-vm: vm $(B)/init
	/usr/bin/python3 -m pytest -p no:cacheprovider -v tests/integration/test_vm.py

vm-pytest: vm test-build
	tests/vm/run-in-vm --timeout $(VM_PYTEST_TIMEOUT) -e CRTEST_SLOW=$${CRTEST_SLOW:-5} -- \
	  /usr/bin/python3 -m pytest -p no:cacheprovider $(VM_PYTEST)

test-appliance: vm all rootfs appliance
	/usr/bin/python3 -m pytest -p no:cacheprovider -v -m appliance tests/integration/test_appliance.py

# The appliance: qemu's user network forwards 127.0.0.1:APPLIANCE_PORT on this machine to the
# appliance's port 80, and its DHCP gives the appliance's eth0 an address. Ctrl-a x quits qemu;
# ctrl-alt-del (qemu monitor: ctrl-a c, `sendkey ctrl-alt-delete`) or `svctl poweroff` on its
# console stops it in order.
# no_timer_check: on a loaded host the kernel's IO-APIC timer check fails under TCG (a panic
# at boot); panic=-1: a panic reboots, which ends qemu -no-reboot.
APPLIANCE_PORT ?= 8080
APPLIANCE_ACCEL ?= tcg
APPLIANCE_APPEND ?= console=ttyS0 no_timer_check panic=-1
appliance: deps-vm all
	contrib/appliance/mkappliance $(B)/appliance $(B)/supervisor $(B)/init $(B)/svctl conf/appliance.ini

appliance-run: appliance
	qemu-system-x86_64 -accel $(APPLIANCE_ACCEL) -m 512 -nographic -no-reboot \
	  -kernel $(B)/appliance/vmlinuz -initrd $(B)/appliance/initramfs.cpio.gz -append "$(APPLIANCE_APPEND)" \
	  -netdev user,id=n,hostfwd=tcp:127.0.0.1:$(APPLIANCE_PORT)-:80 -device virtio-net-pci,netdev=n

test-systemd: vm deb
	$(call apt_ensure,$(SYSVM_PKGS))
	tests/vm/mksysvm $(B)/sysvm
	/usr/bin/python3 -m pytest -p no:cacheprovider -v tests/integration/test_deb.py
	/usr/bin/python3 -m pytest -p no:cacheprovider -v -s -m systemd_vm tests/integration/test_systemd.py
