#!/usr/bin/env bash
# Markers smoke test (issue 16 part 6): the mechanism deferred restarts rely
# on, on each release's own systemd (bookworm 252, trixie 257).
#   - restart-stale's own D-Bus code sets the marker: `restart-stale
#     --defer` by hand, after an upgrade with the apt hook off, marks the
#     stale, allowed demo-allowed with Markers=needs-restart
#     (Manager.SetUnitProperties) and exits 3; the stale but denied
#     demo-denied and the unaffected demo-unrelated stay unmarked; nothing
#     is restarted.
#   - systemd's own window takes it from there: `systemctl
#     reload-or-restart --marked` restarts demo-allowed (new MainPID, clean
#     maps) and clears its marker; the other units keep their PIDs.
# 28-deferred-markers.sh covers the other two ends: marking from the apt
# hook (Auto-Restart "false") and restart-stale's own `--marked`.
# Only in cgroup v2: markers are PID 1 state that does not depend on the
# cgroup mode, and the restart itself is covered in v1 by 10 and 20.
# e2e: releases bookworm trixie
# e2e: modes v2
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

HOOK=/etc/apt/apt.conf.d/50restart-stale

markers() { e2e_in "$1" systemctl show -P Markers "$2"; }

t() {
    local m=$1 u out rc new
    local -A pid

    e2e_apt_setup "$m" pid
    e2e_log "systemd in $m: $(e2e_in "$m" systemctl --version | head -n 1) ($E2E_SUITE)"

    # Upgrade with the hook off, so that only the hand-run --defer marks.
    e2e_in "$m" mv "$HOOK" /root/50restart-stale.off
    e2e_publish "$m" v2
    e2e_step "apt-get upgrade without the hook" e2e_apt "$m" upgrade
    e2e_in "$m" mv /root/50restart-stale.off "$HOOK"
    assert_contains "$(e2e_maps "$m" "${pid[demo-allowed.service]}")" "(deleted)" \
        "maps of demo-allowed after the upgrade"
    assert_eq "" "$(markers "$m" demo-allowed.service)" "Markers of demo-allowed before --defer"

    rc=0
    out=$(e2e_run "$m" restart-stale --defer 2>&1) || rc=$?
    printf '%s\n' "$out" | e2e_show_log
    assert_eq 3 "$rc" "exit status of restart-stale --defer"
    assert_eq "needs-restart" "$(markers "$m" demo-allowed.service)" "Markers of demo-allowed"
    for u in demo-denied.service demo-unrelated.service; do
        assert_eq "" "$(markers "$m" "$u")" "Markers of $u"
    done
    for u in "${E2E_DEMO_UNITS[@]}"; do
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u after --defer"
    done

    e2e_step "systemctl reload-or-restart --marked" \
        e2e_in "$m" systemctl reload-or-restart --marked
    e2e_wait_active "$m" demo-allowed.service
    new=$(e2e_unit_pid "$m" demo-allowed.service)
    assert_ne "${pid[demo-allowed.service]}" "$new" "MainPID of demo-allowed after --marked"
    assert_not_contains "$(e2e_maps "$m" "$new")" "(deleted)" "maps of the new demo-allowed"
    assert_eq "" "$(markers "$m" demo-allowed.service)" "Markers of demo-allowed after --marked"
    for u in "${E2E_DEMO_UNITS[@]}"; do
        [[ $u == demo-allowed.service ]] && continue
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u after --marked"
    done
}
e2e_test_main t
