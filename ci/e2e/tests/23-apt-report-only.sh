#!/usr/bin/env bash
# The admin setting of docs/apt.md: `RestartStale::Auto-Restart "false";`
# in a file of the admin's own turns automatic restarts into a report.
# After `apt-get upgrade` of libdemo1, nothing is restarted (every demo
# PID unchanged, demo-allowed still on the deleted library), and the
# journal of restart-stale-apt.service says restarts are off and what
# would have been restarted; the finish unit still succeeds.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

LOCAL_CONF=/etc/apt/apt.conf.d/51restart-stale-local

t() {
    local m=$1 u log
    local -A pid

    e2e_apt_setup "$m" pid
    e2e_in "$m" sh -c "echo 'RestartStale::Auto-Restart \"false\";' >$LOCAL_CONF"

    e2e_upgrade_logged "$m" log

    for u in "${E2E_DEMO_UNITS[@]}"; do
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u"
    done
    assert_contains "$(e2e_maps "$m" "${pid[demo-allowed.service]}")" "libdemo.so.1 (deleted)" \
        "maps of demo-allowed (not restarted)"
    assert_line "$log" 'automatic restarts are off \(RestartStale::Auto-Restart "false"\): marking the units to restart later' "finish journal"
    assert_line "$log" 'demo-allowed\.service: not restarting now \(deferred\)' "finish journal"
    assert_line "$log" 'demo-denied\.service +skip +\(denied by admin' "finish journal"
    assert_no_line "$log" ': restarting |restarted in ' "finish journal"
    assert_line "$log" "systemd\\[1\\]: $E2E_FINISH_UNIT: Deactivated successfully" "finish journal"

    e2e_in "$m" rm -f "$LOCAL_CONF"
}
e2e_test_main t
