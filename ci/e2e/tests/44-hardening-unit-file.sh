#!/usr/bin/env bash
# Issue 13 item 11: a unit whose unit file the upgrade rewrote is restarted
# on its new definition. demo-env 2.0 changes its binary and its unit's
# Environment= (DEMO_ENV=1.0 -> 2.0); like hand-made packages it has no
# maintainer scripts, so nothing runs daemon-reload and systemd keeps the
# old definition loaded (NeedDaemonReload=yes). After `apt-get upgrade`:
#   - the finish logs that it reloads systemd's unit files first;
#   - demo-env.service (allowed) is restarted, and the new process's
#     /proc/PID/environ holds DEMO_ENV=2.0.
# e2e: modes v2
# (v1 adds nothing: unit loading does not depend on the cgroup mode.)
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

UNIT=demo-env.service

# environ_of NAME PID: the process's environment, one variable a line.
environ_of() {
    e2e_in "$1" cat "/proc/$2/environ" | tr '\0' '\n'
}

cleanup() {
    local m=$1
    e2e_in "$m" systemctl stop "$UNIT" 2>/dev/null || true
    e2e_wait_apt_finish "$m"
    e2e_in "$m" dpkg --purge demo-env >/dev/null
    e2e_in "$m" systemctl daemon-reload
    e2e_policy "$m" "$UNIT" none
}

t() {
    local m=$1 cursor log old new
    local -A pid

    e2e_apt_setup "$m" pid
    e2e_step "install demo-env 1.0" e2e_apt "$m" install demo-env
    e2e_wait_apt_finish "$m"
    e2e_in "$m" systemctl start "$UNIT"
    e2e_wait_active "$m" "$UNIT"
    e2e_policy "$m" "$UNIT" allow
    old=$(e2e_unit_pid "$m" "$UNIT")
    assert_line "$(environ_of "$m" "$old")" '^DEMO_ENV=1\.0$' "environment of demo-env 1.0"

    e2e_publish "$m" v2 demo-env
    cursor=$(e2e_journal_cursor "$m")
    e2e_step "apt-get upgrade" e2e_apt "$m" upgrade
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    assert_eq 2.0 "$(e2e_in "$m" dpkg-query -W -f='${Version}' demo-env)" "installed demo-env"
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | sed 's/^/[e2e]   | /' >&2

    new=$(e2e_unit_pid "$m" "$UNIT")
    assert_ne "$old" "$new" "MainPID of $UNIT"
    assert_ne 0 "$new" "MainPID of $UNIT"
    assert_line "$(environ_of "$m" "$new")" '^DEMO_ENV=2\.0$' "environment of the restarted demo-env"
    assert_line "$log" 'unit files changed on disk \(demo-env\.service\): reloading systemd.s configuration first' "finish journal"
    assert_line "$log" 'demo-env\.service: restarted in .*, verified clean$' "finish journal"
    assert_eq no "$(e2e_in "$m" systemctl show -p NeedDaemonReload --value "$UNIT")" "NeedDaemonReload of $UNIT"

    cleanup "$m"
}
e2e_test_main t
