#!/usr/bin/env bash
# The apt integration (issue 4, "Done when" 1): restart-stale installed from
# the .deb, an admin runs `apt-get upgrade`, which upgrades libdemo1 1.0 ->
# 2.0. The apt hooks start restart-stale-apt.service, which acts once apt is
# done. Checked:
#   - demo-allowed (allowed, maps libdemo): restarted, new PID, clean maps;
#   - demo-denied (denied, maps libdemo): same PID, still on the old library,
#     and reported in the journal of restart-stale-apt.service;
#   - demo-unrelated (does not map libdemo): same PID, not mentioned;
#   - demo-otherdel (maps a deleted file that no package of the transaction
#     owns): same PID, still mapping it, not mentioned;
#   - demo-slow1..5 (map libdemo, no policy link): same PID, reported;
#   - the finish unit exits 0 and says what it did.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

t() {
    local m=$1 u log new
    local -A pid

    e2e_apt_setup "$m" pid

    e2e_upgrade_logged "$m" log
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    assert_eq 2.0 "$(e2e_in "$m" dpkg-query -W -f='${Version}' libdemo1)" "installed libdemo1"

    new=$(e2e_unit_pid "$m" demo-allowed.service)
    assert_ne "${pid[demo-allowed.service]}" "$new" "MainPID of demo-allowed"
    assert_ne 0 "$new" "MainPID of demo-allowed"
    assert_contains "$(e2e_maps "$m" "$new")" "/libdemo.so.1" "maps of the new demo-allowed"
    assert_not_contains "$(e2e_maps "$m" "$new")" "(deleted)" "maps of the new demo-allowed"
    assert_line "$log" 'restart-stale\[[0-9]+\]: demo-allowed\.service: restarted in .*, verified clean$' "finish journal"

    assert_eq "${pid[demo-denied.service]}" "$(e2e_unit_pid "$m" demo-denied.service)" "MainPID of demo-denied"
    assert_contains "$(e2e_maps "$m" "${pid[demo-denied.service]}")" "libdemo.so.1 (deleted)" \
        "maps of demo-denied (still the old library)"
    assert_line "$log" 'restart-stale\[[0-9]+\]: demo-denied\.service +skip +\(denied by admin: /etc/restart-stale/demo-denied\.service\)' "finish journal"

    assert_eq "${pid[demo-unrelated.service]}" "$(e2e_unit_pid "$m" demo-unrelated.service)" "MainPID of demo-unrelated"
    assert_no_line "$log" 'demo-unrelated' "finish journal"

    assert_eq "${pid[demo-otherdel.service]}" "$(e2e_unit_pid "$m" demo-otherdel.service)" "MainPID of demo-otherdel"
    assert_contains "$(e2e_maps "$m" "${pid[demo-otherdel.service]}")" "/var/lib/demo-otherdel/copy.so (deleted)" \
        "maps of demo-otherdel"
    assert_no_line "$log" 'demo-otherdel' "finish journal"

    for u in demo-slow1.service demo-slow2.service demo-slow3.service demo-slow4.service demo-slow5.service; do
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u (no policy link)"
    done
    assert_line "$log" 'demo-slow3\.service +skip +\(not allowed: no policy link\)' "finish journal"

    assert_line "$log" "apt transaction \\(1 hook runs, [^)]*apt-get [^)]* upgrade\): libdemo1:$(dpkg --print-architecture) 1\.0 → 2\.0\$" "finish journal"
    assert_line "$log" 'summary: 1 restarted and verified clean, 0 failed or still stale' "finish journal"
    assert_line "$log" "systemd\\[1\\]: $E2E_FINISH_UNIT: Deactivated successfully" "finish journal"
    assert_no_line "$log" 'Failed with result|status=[1-9]' "finish journal"
}
e2e_test_main t
