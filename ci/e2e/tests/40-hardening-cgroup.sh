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

# install_scripts NAME: the delegated service's program and the test's
# cleanup, as files in NAME. The sub-cgroups are the service's own business
# (Delegate=yes), so it makes them itself, then sleeps. The chain is made
# and removed by relative names with perl (perl-base is Essential): the
# shell's cd goes by absolute paths, which stop working at PATH_MAX.
install_scripts() {
    e2e_in "$1" sh -c 'cat >/usr/local/lib/demo-deleg.sh && chmod 755 /usr/local/lib/demo-deleg.sh' <<'EOF'
#!/bin/sh
set -e
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    base=/sys/fs/cgroup
    cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
    mkdir "$base$cg/thr-root" "$base$cg/thr-root/thr"
    echo threaded >"$base$cg/thr-root/thr/cgroup.type"
else
    base=/sys/fs/cgroup/systemd
    cg=$(sed -n 's/^[0-9]*:name=systemd://p' /proc/self/cgroup)
fi
perl -e 'chdir $ARGV[0] or die "$ARGV[0]: $!\n"; my $n = "0" x 200;
    for (1 .. 25) { mkdir $n or die "mkdir: $!\n"; chdir $n or die "chdir: $!\n" }' "$base$cg"
echo ready >/run/demo-deleg.ready
exec sleep infinity
EOF
    e2e_in "$1" sh -c 'cat >/usr/local/lib/demo-deleg-cleanup.sh && chmod 755 /usr/local/lib/demo-deleg-cleanup.sh' <<'EOF'
#!/bin/sh
# Removes the long chain deepest first, and the threaded pair.
cg=$(systemctl show -p ControlGroup --value demo-deleg.service)
[ -n "$cg" ] || exit 0
base=/sys/fs/cgroup
[ -f $base/cgroup.controllers ] || base=/sys/fs/cgroup/systemd
perl -e 'chdir $ARGV[0] or exit 0; my $n = "0" x 200; my $d = 0;
    while (-d $n) { chdir $n or die "chdir: $!\n"; $d++ }
    while ($d-- > 0) { chdir ".." or die "chdir: $!\n"; rmdir $n or die "rmdir: $!\n" }' "$base$cg"
rmdir "$base$cg/thr-root/thr" "$base$cg/thr-root" 2>/dev/null || true
EOF
}

cleanup_deleg() {
    local m=$1
    e2e_in "$m" /usr/local/lib/demo-deleg-cleanup.sh
    e2e_in "$m" systemctl stop "$DELEG" 2>/dev/null || true
    e2e_in "$m" rm -f "/etc/systemd/system/$DELEG" /usr/local/lib/demo-deleg.sh \
        /usr/local/lib/demo-deleg-cleanup.sh /run/demo-deleg.ready
    e2e_in "$m" systemctl daemon-reload
}

t() {
    local m=$1 log new i
    local -A pid

    e2e_apt_setup "$m" pid
    install_scripts "$m"
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

    e2e_upgrade_logged "$m" log

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
