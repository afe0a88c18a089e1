#!/usr/bin/env bash
# Issue 13 item 10: a transaction's paths are the host's paths.
#   - demo-jail.service runs the demo daemon with RootDirectory=/srv/jail
#     (systemd gives it a mount namespace of its own), from the jail's own
#     copies of the binary, libc and libdemo.so.1. An admin replaces the
#     jail's libdemo.so.1 by hand while apt upgrades the host's libdemo1.
#     The jail's process maps the same path as the host's daemons, but the
#     file in its root is not the one the transaction changed: the hook
#     must leave it alone (same PID, reason "path differs from the host's
#     in its root"), and `status` must still report it as stale, though
#     never as a restart (a root's own copy never makes one, issue 22).
#   - demo-allowed runs with ProtectSystem=strict and PrivateTmp=yes (a
#     mount namespace too, but the host's /usr through bind mounts): the
#     transaction counts for it, it is restarted.
# e2e: modes v2
# (v1 adds nothing: mount namespaces and paths do not depend on cgroups.)
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

JAIL=/srv/jail
UNIT=demo-jail.service
PROTECT=/etc/systemd/system/demo-allowed.service.d/e2e-protect.conf

# Copies the demo daemon and what it loads into the jail, each file under
# its real path, with the names ld.so looks up as links to it.
# shellcheck disable=SC2016 # expanded by the container's shell
BUILD_JAIL='set -e
J=$1
rm -rf "$J"
mkdir -p "$J/proc" "$J/sys" "$J/dev" "$J/run" "$J/tmp"
for f in /usr/bin/demo-allowed $(ldd /usr/bin/demo-allowed | grep -o "/[^ ]*"); do
    r=$(readlink -f "$f")
    mkdir -p "$J$(dirname "$r")"
    cp "$r" "$J$r"
    if [ "$f" != "$r" ] && [ ! -e "$J$f" ]; then
        mkdir -p "$J$(dirname "$f")"
        ln -s "$r" "$J$f"
    fi
done
'

cleanup() {
    local m=$1
    e2e_in "$m" systemctl stop "$UNIT" 2>/dev/null || true
    e2e_in "$m" rm -rf "$JAIL" "/etc/systemd/system/$UNIT" "$(dirname "$PROTECT")"
    e2e_in "$m" systemctl daemon-reload
    e2e_policy "$m" "$UNIT" none
}

t() {
    local m=$1 log new jail_pid allowed_pid lib status
    local -A pid

    e2e_apt_setup "$m" pid
    e2e_in "$m" sh -c "$BUILD_JAIL" build-jail "$JAIL"
    e2e_in "$m" sh -c "cat >/etc/systemd/system/$UNIT" <<EOF
[Unit]
Description=restart-stale e2e: the demo daemon in a RootDirectory= jail
[Service]
RootDirectory=$JAIL
ExecStart=/usr/bin/demo-allowed jail
EOF
    e2e_in "$m" mkdir -p "$(dirname "$PROTECT")"
    e2e_in "$m" sh -c "printf '[Service]\nProtectSystem=strict\nPrivateTmp=yes\n' >$PROTECT"
    e2e_in "$m" systemctl daemon-reload
    e2e_in "$m" systemctl restart demo-allowed.service
    e2e_in "$m" systemctl start "$UNIT"
    e2e_wait_active "$m" "$UNIT" demo-allowed.service
    e2e_policy "$m" "$UNIT" allow
    jail_pid=$(e2e_unit_pid "$m" "$UNIT")
    allowed_pid=$(e2e_unit_pid "$m" demo-allowed.service)
    # Both live in mount namespaces of their own, or this proves nothing.
    for p in "$jail_pid" "$allowed_pid"; do
        assert_ne "$(e2e_in "$m" readlink /proc/1/ns/mnt)" "$(e2e_in "$m" readlink "/proc/$p/ns/mnt")" \
            "mount namespace of pid $p"
    done
    assert_contains "$(e2e_maps "$m" "$jail_pid")" "/libdemo.so.1" "maps of the jailed daemon"
    lib=$(e2e_maps "$m" "$jail_pid" | grep -o '/[^ ]*/libdemo\.so\.1' | head -n 1)

    # The jail's admin updates the jail's own copy (a new inode).
    e2e_in "$m" sh -c "cp '$JAIL$lib' '$JAIL$lib.new' && mv -f '$JAIL$lib.new' '$JAIL$lib'"
    e2e_upgrade_logged "$m" log

    assert_eq "$jail_pid" "$(e2e_unit_pid "$m" "$UNIT")" "MainPID of $UNIT"
    assert_contains "$(e2e_maps "$m" "$jail_pid")" "libdemo.so.1 (deleted)" "maps of the jailed daemon (its old copy)"
    assert_line "$log" "demo-jail\\.service +skip +\\(not affected: [^ ]*/libdemo\\.so\\.1: path differs from the host's in its root\\)" "finish journal"
    assert_no_line "$log" 'demo-jail\.service: (restarting|restarted)' "finish journal"

    new=$(e2e_unit_pid "$m" demo-allowed.service)
    assert_ne "$allowed_pid" "$new" "MainPID of demo-allowed (ProtectSystem=strict, PrivateTmp=yes)"
    assert_line "$log" 'demo-allowed\.service: restarted in .*, verified clean$' "finish journal"

    status=$(e2e_in "$m" restart-stale status) || true
    printf '%s\n' "$status" | e2e_show_log status
    # Stale, but only through its root's own copy: reported, and never a
    # reason to restart, even in a run without a transaction (issue 22:
    # a user could mount over a path in a user namespace of their own).
    assert_line "$status" "^demo-jail\\.service +skip +\\(only its root's own copies are stale \\([^ ]*/libdemo\\.so\\.1\\): reported, never restarted\\)" "status (stale, never a restart reason)"
    assert_line "$status" "^ +pid $jail_pid \\(demo-allowed\\): [^ ]*/libdemo\\.so\\.1 \\[(deleted|replaced), its root's own copy, not the host's\\]" "status"

    cleanup "$m"
}
e2e_test_main t
