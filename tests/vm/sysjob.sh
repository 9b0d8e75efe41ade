#!/bin/sh
# Runs inside the systemd VM (build/sysvm, vmjob.service) for tests/integration/test_systemd.py:
# installs corral's .deb, drives corral.service with systemctl and writes what it saw to
# $S/results, one "name value..." line per fact; the test judges them. Waits poll with a
# bound (wait_for), never a fixed sleep.
S=/run/vm-share
CG=/sys/fs/cgroup/system.slice/corral.service
N=$(cat $S/n 2>/dev/null || echo 100)   # services, as in the services.ini the test wrote
say() { echo "$*" >>$S/results; }
ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_for SECONDS CMD...: polls CMD every 0.1 s; 0 once it succeeds, 1 when time is up
wait_for() {
	end=$(($(ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(ms)" -lt "$end" ] || return 1
		sleep 0.1
	done
}
running() { svctl status 2>/dev/null | grep -c ' RUNNING' || true; }
sleeps() { pgrep -xc sleep || true; }
: >$S/results

dpkg -i $S/corral.deb >$S/dpkg.log 2>&1
say dpkg $?
# dh_installsystemd: the install enabled the unit and started it with the example services.ini
say installed_enabled "$(systemctl is-enabled corral)"
say installed_active "$(systemctl is-active corral)"
say installed_running "$(running)"
svctl status >$S/status-install.txt 2>&1
journalctl -u corral --no-pager >$S/journal-install.txt 2>&1
systemctl stop corral
# The unit's WatchdogSec=30s is for real machines: under TCG on a busy host everything runs
# ~50x slower, and a reload that restarts 100 services kept the loop from answering for 30 s
# (measured). The watchdog itself is checked below with 3 s and a SIGSTOP.
mkdir -p /run/systemd/system/corral.service.d
printf '[Service]\nWatchdogSec=300s\n' >/run/systemd/system/corral.service.d/slow.conf
systemctl daemon-reload
cp $S/services.ini /etc/corral/services.ini

# Type=notify: start returns once every autostart service is ready (READY=1)
t0=$(ms)
systemctl start corral
rc=$?
say start "$rc" $(($(ms) - t0))
[ "$rc" = 0 ] || journalctl -u corral --no-pager >$S/journal-start.txt 2>&1
say running_after_start "$(running)"
say status_line "$(systemctl show -p StatusText --value corral)"
main=$(systemctl show -p MainPID --value corral)
say mainpid "$main"
# Delegate=yes: everything below corral.service's own cgroup, the supervisor in its leaf
say supervisor_cg "$(cat $CG/corral/supervisor/cgroup.procs 2>/dev/null | tr '\n' ' ')"
say svc_cgroups "$(ls -d $CG/corral/svc-* 2>/dev/null | wc -l)"
say unit_top_procs "$(wc -l <$CG/cgroup.procs)"
say outside_root "$(ls -d /sys/fs/cgroup/corral 2>/dev/null | wc -l)"
say sleeps_in_unit "$(cat $CG/corral/svc-*/cgroup.procs | xargs -r ps -o comm= -p | grep -cx sleep)"

# systemctl reload: a new service in the file comes up
printf '\n[program:added]\ncommand = /bin/sleep infinity\nstartsecs = 0\n' >>/etc/corral/services.ini
systemctl reload corral
say reload "$?"
wait_for 30 sh -c 'svctl status added 2>/dev/null | grep -q " RUNNING"'
say added_running "$?"
say reload_mainpid "$(systemctl show -p MainPID --value corral)"

# the watchdog: a supervisor whose loop is stopped is killed and started again
mkdir -p /run/systemd/system/corral.service.d
printf '[Service]\nWatchdogSec=3s\n' >/run/systemd/system/corral.service.d/wd.conf
systemctl daemon-reload
systemctl restart corral
rc=$?
say restart "$rc"
[ "$rc" = 0 ] || journalctl -u corral --no-pager >$S/journal-restart.txt 2>&1
old=$(systemctl show -p MainPID --value corral)
# never `kill -STOP 0` (this script's own group) when the restart left no main process
[ "${old:-0}" -gt 0 ] && kill -STOP "$old"
t0=$(ms)
wait_for 60 sh -c "[ \$(systemctl show -p NRestarts --value corral) -ge 1 ] &&
	[ \"\$(systemctl show -p ActiveState --value corral)\" = active ]"
say watchdog_restart "$?" $(($(ms) - t0))
# the run that ended: systemd's own words in the journal
say watchdog_result "$(journalctl -u corral --no-pager | grep -c "Failed with result 'watchdog'")"
new=$(systemctl show -p MainPID --value corral)
say watchdog_newpid "$([ "$new" != "$old" ] && [ "$new" != 0 ] && echo yes || echo no)"
wait_for 30 sh -c "[ \$(svctl status 2>/dev/null | grep -c ' RUNNING') -eq $((N + 1)) ]"
say watchdog_running "$?" "$(running)"
say watchdog_sleeps "$(sleeps)"
journalctl -u corral --no-pager >$S/journal-watchdog.txt 2>&1

# systemctl stop leaves nothing
t0=$(ms)
systemctl stop corral
say stop "$?" $(($(ms) - t0))
say stop_cgroup "$(ls -d $CG 2>/dev/null | wc -l)"
say stop_sleeps "$(sleeps)"

# systemctl kill -s KILL, then start: the new supervisor sweeps what was left
systemctl start corral
systemctl kill -s KILL --kill-whom=main corral
wait_for 30 sh -c '[ "$(systemctl show -p ActiveState --value corral)" != active ] ||
	[ "$(systemctl show -p NRestarts --value corral)" -ge 1 ]'
systemctl start corral
say killed_start "$?"
wait_for 30 sh -c "[ \$(pgrep -xc sleep) -eq $((N + 1)) ]"
say killed_sleeps "$?" "$(sleeps)"
systemctl stop corral
say killed_stop_sleeps "$(sleeps)"
say killed_stop_cgroup "$(ls -d $CG 2>/dev/null | wc -l)"

# the bench: corral with N services vs N systemd units started by one target, same VM
i=1
wants=""
while [ $i -le "$N" ]; do
	wants="$wants bench@$i.service"
	i=$((i + 1))
done
printf '[Unit]\nDescription=bench %%i\n[Service]\nType=exec\nExecStart=/bin/sleep infinity\n' \
	>/run/systemd/system/bench@.service
printf '[Unit]\nDescription=%s bench units\nWants=%s\n' "$N" "$wants" \
	>/run/systemd/system/bench.target
systemctl daemon-reload
cp $S/services.ini /etc/corral/services.ini
rm -f /run/systemd/system/corral.service.d/wd.conf
systemctl daemon-reload
for round in 1 2 3; do
	t0=$(ms)
	systemctl start corral
	t1=$(ms)
	say bench_corral "$round" $((t1 - t0)) "$(running)"
	systemctl stop corral
	t0=$(ms)
	systemctl start bench.target
	t1=$(ms)
	say bench_systemd "$round" $((t1 - t0)) "$(systemctl list-units --state=active 'bench@*' --no-legend | wc -l)"
	systemctl stop bench.target 'bench@*'
done
say done 0
