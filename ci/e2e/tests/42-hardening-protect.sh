#!/usr/bin/env bash
# Issue 13 items 3 and 8: never restart what runs the package manager, nor
# what a restart would carry over to.
#   Item 3: an admin's update service (custom-update.service, a system
#   unit with an allow link) runs `apt-get upgrade` of libdemo1 and keeps
#   a daemon mapping libdemo running, so its own code is stale once apt is
#   done. The finish runs in a unit of its own, so only the record tells
#   it that this unit runs apt: it must be skipped with reason
#   runs-this-tool, not restarted (same MainPID, still active).
#   Item 8: two allowed, stale units whose restart systemd would carry
#   over (TryRestartUnit restarts units that are PartOf= the target):
#   demo-allowed, which systemd-logind (never tier) is made PartOf= by a
#   drop-in, and demo-slow1, which custom-update.service (protected: it
#   runs apt) is PartOf=. Both are skipped with would-restart-protected;
#   logind, demo-allowed and demo-slow1 keep their PIDs.
# e2e: modes v2
# (v1 adds nothing: the record, the plan and systemd's dependencies do not
# depend on the cgroup mode.)
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CUSTOM=custom-update.service
LOGIND=systemd-logind.service
DROPIN=/run/systemd/system/$LOGIND.d/e2e-partof.conf

cleanup() {
    local m=$1
    e2e_in "$m" systemctl stop "$CUSTOM" 2>/dev/null || true
    e2e_in "$m" rm -f "$DROPIN" /run/custom-update.rc /run/custom-update.log
    e2e_in "$m" systemctl daemon-reload
    e2e_policy "$m" "$CUSTOM" none
    e2e_policy "$m" demo-slow1.service none
}

t() {
    local m=$1 cursor log i rc custom_pid logind_pid maps p
    local -A pid

    e2e_apt_setup "$m" pid
    e2e_policy "$m" demo-slow1.service allow
    e2e_policy "$m" "$CUSTOM" allow
    e2e_in "$m" systemctl start "$LOGIND"
    e2e_wait_active "$m" "$LOGIND"
    e2e_in "$m" mkdir -p "$(dirname "$DROPIN")"
    e2e_in "$m" sh -c "printf '[Unit]\nPartOf=demo-allowed.service\n' >$DROPIN"
    e2e_in "$m" systemctl daemon-reload
    assert_contains "$(e2e_in "$m" systemctl show -p ConsistsOf --value demo-allowed.service)" "$LOGIND" \
        "ConsistsOf of demo-allowed"
    logind_pid=$(e2e_unit_pid "$m" "$LOGIND")

    e2e_publish "$m" v2
    cursor=$(e2e_journal_cursor "$m")
    e2e_in "$m" rm -f /run/custom-update.rc
    # The update service: a daemon of its own that maps libdemo, then apt;
    # it stays active after apt (exec keeps its MainPID), as a service
    # that goes on with other work would.
    e2e_in "$m" systemd-run --quiet --unit="$CUSTOM" --slice=system.slice \
        -p PartOf=demo-slow1.service --setenv=DEBIAN_FRONTEND=noninteractive \
        sh -c '/usr/bin/demo-denied custom-update & apt-get -y -q -o Dpkg::Options::=--force-confold upgrade >/run/custom-update.log 2>&1; echo $? >/run/custom-update.rc; exec sleep 600'
    for ((i = 0; i < 1200; i++)); do
        e2e_in "$m" test -e /run/custom-update.rc && break
        sleep 0.1
    done
    rc=$(e2e_in "$m" cat /run/custom-update.rc 2>/dev/null) || {
        e2e_in "$m" cat /run/custom-update.log >&2 || true
        fail "apt-get upgrade in $CUSTOM did not end within 120 s"
    }
    e2e_in "$m" cat /run/custom-update.log | e2e_show_log apt
    assert_eq 0 "$rc" "exit status of apt-get upgrade in $CUSTOM"
    custom_pid=$(e2e_unit_pid "$m" "$CUSTOM")
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | e2e_show_log

    # Item 3.
    assert_line "$log" 'custom-update\.service +skip +\(runs this tool or the package manager that called it\)' "finish journal"
    assert_eq "$custom_pid" "$(e2e_unit_pid "$m" "$CUSTOM")" "MainPID of $CUSTOM"
    assert_eq active "$(e2e_in "$m" systemctl show -p ActiveState --value "$CUSTOM")" "$CUSTOM"
    assert_no_line "$log" 'custom-update\.service: (restarting|restarted)' "finish journal"
    maps=
    for p in $(e2e_unit_procs "$m" "$CUSTOM"); do
        maps+=$(e2e_maps "$m" "$p" 2>/dev/null || true)
    done
    assert_contains "$maps" "libdemo.so.1 (deleted)" "maps in $CUSTOM (still the old library)"

    # Item 8.
    assert_line "$log" "demo-allowed\\.service: not restarting: a restart would also restart $LOGIND \\(PartOf=\\), which is never restarted automatically" "finish journal"
    assert_line "$log" 'demo-slow1\.service: not restarting: a restart would also restart custom-update\.service \(PartOf=\), which runs this tool or the package manager that called it' "finish journal"
    assert_eq "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed"
    assert_eq "${pid[demo-slow1.service]}" "$(e2e_unit_pid "$m" demo-slow1.service)" "MainPID of demo-slow1"
    assert_eq "$logind_pid" "$(e2e_unit_pid "$m" "$LOGIND")" "MainPID of $LOGIND"

    cleanup "$m"
}
e2e_test_main t
