#!/usr/bin/env bash
# Issue 13 item 1: one unreadable cgroup below system.slice must not stop
# every scan. A Delegate=yes service (demo-deleg.service) builds, in the
# subtree systemd delegated to it, a chain of sub-cgroups whose absolute
# path is longer than PATH_MAX: every read of it fails with ENAMETOOLONG,
# in v2 and in v1's name=systemd tree alike. In v2 it also makes a
# threaded sub-cgroup, whose cgroup.procs the kernel refuses to read
# (EOPNOTSUPP). Then `apt-get upgrade` of libdemo1:
#   - the finish names the long cgroup as a problem it skipped;
#   - it still restarts demo-allowed (allowed, stale): new PID, clean maps;
#   - demo-denied stays; the finish unit succeeds.
# Runs in both modes: the walk reads v1's name=systemd tree, not v2's.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

DELEG=demo-deleg.service

# What the delegated service runs: the sub-cgroups are its own business
# (Delegate=yes), so it makes them itself, then sleeps.
# shellcheck disable=SC2016 # expanded by the container's shell
DELEG_SCRIPT='#!/bin/sh
set -e
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    base=/sys/fs/cgroup
    cg=$(sed -n "s/^0:://p" /proc/self/cgroup)
    mkdir "$base$cg/thr-root" "$base$cg/thr-root/thr"
    echo threaded >"$base$cg/thr-root/thr/cgroup.type"
else
    base=/sys/fs/cgroup/systemd
    cg=$(sed -n "s/^[0-9]*:name=systemd://p" /proc/self/cgroup)
fi
cd "$base$cg"
name=$(printf "%0200d" 0)
for i in $(seq 25); do
    mkdir "$name"
    cd "$name"
done
echo ready >/run/demo-deleg.ready
exec sleep infinity
'

# Removes the long chain deepest first (rmdir by relative name: the
# absolute paths are too long for any tool), and the threaded pair.
# shellcheck disable=SC2016 # expanded by the container's shell
CLEANUP_SCRIPT='#!/bin/sh
cg=$(systemctl show -p ControlGroup --value demo-deleg.service)
[ -n "$cg" ] || exit 0
base=/sys/fs/cgroup
[ -f $base/cgroup.controllers ] || base=/sys/fs/cgroup/systemd
cd "$base$cg" || exit 0
name=$(printf "%0200d" 0)
n=0
while [ -d "$name" ]; do cd "$name"; n=$((n + 1)); done
while [ $n -gt 0 ]; do cd ..; rmdir "$name"; n=$((n - 1)); done
rmdir thr-root/thr thr-root 2>/dev/null || true
'

cleanup_deleg() {
    local m=$1
    e2e_in "$m" sh -c "$CLEANUP_SCRIPT"
    e2e_in "$m" systemctl stop "$DELEG" 2>/dev/null || true
    e2e_in "$m" rm -f "/etc/systemd/system/$DELEG" /usr/local/lib/demo-deleg.sh /run/demo-deleg.ready
    e2e_in "$m" systemctl daemon-reload
}

t() {
    local m=$1 cursor log new i
    local -A pid

    e2e_apt_setup "$m" pid
    e2e_in "$m" sh -c "cat >/usr/local/lib/demo-deleg.sh && chmod 755 /usr/local/lib/demo-deleg.sh" <<<"$DELEG_SCRIPT"
    e2e_in "$m" sh -c "cat >/etc/systemd/system/$DELEG" <<EOF
[Unit]
Description=restart-stale e2e: a service with a delegated cgroup subtree
[Service]
Delegate=yes
ExecStart=/usr/local/lib/demo-deleg.sh
EOF
    e2e_in "$m" rm -f /run/demo-deleg.ready
    e2e_in "$m" systemctl daemon-reload
    e2e_in "$m" systemctl start "$DELEG"
    for ((i = 0; i < 100; i++)); do
        e2e_in "$m" test -e /run/demo-deleg.ready && break
        sleep 0.1
    done
    e2e_in "$m" test -e /run/demo-deleg.ready || fail "$DELEG did not build its sub-cgroups"
    e2e_wait_active "$m" "$DELEG"

    e2e_publish "$m" v2
    cursor=$(e2e_journal_cursor "$m")
    e2e_step "apt-get upgrade" e2e_apt "$m" upgrade
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | sed 's/^/[e2e]   | /' >&2

    assert_line "$log" "File name too long.*skipping the cgroup.* /system\\.slice/$DELEG/0+/" "finish journal (the long cgroup is a problem)"
    new=$(e2e_unit_pid "$m" demo-allowed.service)
    assert_ne "${pid[demo-allowed.service]}" "$new" "MainPID of demo-allowed"
    assert_ne 0 "$new" "MainPID of demo-allowed"
    assert_not_contains "$(e2e_maps "$m" "$new")" "(deleted)" "maps of the new demo-allowed"
    assert_line "$log" 'demo-allowed\.service: restarted in .*, verified clean$' "finish journal"
    assert_eq "${pid[demo-denied.service]}" "$(e2e_unit_pid "$m" demo-denied.service)" "MainPID of demo-denied"
    assert_line "$log" "systemd\\[1\\]: $E2E_FINISH_UNIT: Deactivated successfully" "finish journal"
    assert_eq active "$(e2e_in "$m" systemctl show -p ActiveState --value "$DELEG")" "$DELEG"

    cleanup_deleg "$m"
}
e2e_test_main t
