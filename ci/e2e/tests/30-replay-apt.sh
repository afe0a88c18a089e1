#!/usr/bin/env bash
# Replay (issue 6, "Done when", apt): the admin had the apt hook disabled
# during `apt-get upgrade`, then runs `restart-stale replay --apt-history
# last`. It must do what the hook would have done: restart exactly the
# affected, allowed unit (demo-allowed), and leave the denied, unrelated
# and other-deleted-file units alone. A second replay of the same
# transaction restarts nothing: the new process no longer maps an old file.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

HOOK=/etc/apt/apt.conf.d/50restart-stale

t() {
    local m=$1 u out new again
    local -A pid

    e2e_apt_setup "$m" pid

    # The admin disables the hook for this upgrade (and restores it below).
    e2e_in "$m" mv "$HOOK" /root/50restart-stale.off
    e2e_publish "$m" v2
    e2e_step "apt-get upgrade without the hook" e2e_apt "$m" upgrade
    e2e_in "$m" mv /root/50restart-stale.off "$HOOK"
    assert_eq "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" \
        "MainPID of demo-allowed before the replay (no hook ran)"

    out=$(e2e_step "replay --apt-history last" e2e_run "$m" restart-stale replay --apt-history last 2>&1)
    printf '%s\n' "$out" | e2e_show_log
    new=$(e2e_unit_pid "$m" demo-allowed.service)
    assert_ne "${pid[demo-allowed.service]}" "$new" "MainPID of demo-allowed after the replay"
    assert_not_contains "$(e2e_maps "$m" "$new")" "(deleted)" "maps of the new demo-allowed"
    assert_line "$out" 'demo-allowed\.service: restarted in .*, verified clean' "replay output"
    assert_line "$out" 'demo-denied\.service +skip +\(denied by admin' "replay output"
    for u in demo-denied.service demo-unrelated.service demo-otherdel.service demo-slow1.service; do
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u"
    done
    assert_no_line "$out" 'demo-unrelated|demo-otherdel' "replay output"

    # Replaying the same transaction again finds nothing new to restart.
    again=$(e2e_run "$m" restart-stale replay --apt-history last 2>&1)
    assert_eq "$new" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed after a second replay"
    assert_no_line "$again" 'demo-allowed\.service.*restart' "second replay output"
}
e2e_test_main t
