#!/usr/bin/env bash
# Deferred restarts (docs/deferred.md, issue 15 part 1) on a real systemd
# (bookworm: 252, trixie: 257; Markers= exists since 248). With
# `RestartStale::Auto-Restart "false"`, `apt-get upgrade` of libdemo1
# restarts nothing and marks demo-allowed needs-restart; the denied,
# not-allowed and never-tier units (dbus, logind) stay unmarked. `status`
# shows the mark. Then the window's `restart-stale --marked` restarts
# demo-allowed, which is clean after it and has lost its mark, and leaves
# everything else as it was.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

LOCAL_CONF=/etc/apt/apt.conf.d/51restart-stale-local

markers() { e2e_in "$1" systemctl show -P Markers "$2"; }

t() {
    local m=$1 u log out rc
    local -A pid

    e2e_apt_setup "$m" pid
    e2e_in "$m" sh -c "echo 'RestartStale::Auto-Restart \"false\";' >$LOCAL_CONF"

    e2e_upgrade_logged "$m" log

    for u in "${E2E_DEMO_UNITS[@]}"; do
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u after the deferred run"
    done
    assert_eq "needs-restart" "$(markers "$m" demo-allowed.service)" "Markers of demo-allowed"
    for u in demo-denied.service demo-unrelated.service demo-otherdel.service \
        dbus.service systemd-logind.service; do
        assert_eq "" "$(markers "$m" "$u")" "Markers of $u"
    done
    assert_line "$log" 'demo-allowed\.service: not restarting now \(deferred\): marked needs-restart' "finish journal"
    assert_no_line "$log" ': restarting |restarted in ' "finish journal"
    assert_line "$log" "systemd\\[1\\]: $E2E_FINISH_UNIT: Deactivated successfully" "finish journal"

    # status exits 3: restarts are needed and not done.
    rc=0
    out=$(e2e_in "$m" restart-stale status) || rc=$?
    assert_eq 3 "$rc" "exit status of status"
    assert_contains "$out" "marked for restart" "status"

    e2e_step "restart-stale --marked" e2e_in "$m" restart-stale --marked
    assert_ne "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" \
        "MainPID of demo-allowed after --marked"
    out=$(e2e_maps "$m" "$(e2e_unit_pid "$m" demo-allowed.service)")
    if [[ $out == *"(deleted)"* ]]; then
        fail "demo-allowed still maps a deleted file after --marked: $out"
    fi
    assert_eq "" "$(markers "$m" demo-allowed.service)" "Markers of demo-allowed after --marked"
    for u in "${E2E_DEMO_UNITS[@]}"; do
        [[ $u == demo-allowed.service ]] && continue
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u after --marked"
    done

    e2e_in "$m" rm -f "$LOCAL_CONF"
}
e2e_test_main t
