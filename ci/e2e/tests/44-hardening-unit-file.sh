#!/usr/bin/env bash
# Issue 13 item 11, issue 23 item 3: a unit whose unit file the upgrade
# rewrote is restarted on its new definition. demo-env 2.0 changes its
# binary and its unit's Environment= (DEMO_ENV=1.0 -> 2.0); like hand-made
# packages it has no maintainer scripts, so nothing runs daemon-reload and
# systemd keeps the old definition loaded. Two cases:
#   mtime       the packages' unit files have their own dates: systemd
#               sees the change (NeedDaemonReload=yes);
#   same-mtime  the installed 1.0 file is given 2.0's date (and systemd
#               reloaded) before the upgrade, as two builds in the same
#               second look: systemd's mtime check sees nothing
#               (NeedDaemonReload=no), only the transaction's file list
#               says the file changed.
# In both, after `apt-get upgrade`:
#   - the finish logs that it reloads systemd's unit files first, because
#     the unit file changed in this transaction;
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

FILE=/lib/systemd/system/$UNIT

# run_case NAME CASE: one case of the header.
run_case() {
    local m=$1 c=$2 cursor log old new before
    # shellcheck disable=SC2034 # filled by e2e_apt_setup, by name
    local -A pid

    e2e_apt_setup "$m" pid
    e2e_step "install demo-env 1.0" e2e_apt "$m" install demo-env
    e2e_wait_apt_finish "$m"
    if [[ $c == same-mtime ]]; then
        # 2.0's date (build-debs.sh): the upgrade leaves the mtime as it is.
        e2e_in "$m" touch -d "2026-02-01 00:00:00 UTC" "$FILE"
        e2e_in "$m" systemctl daemon-reload
    fi
    before=$(e2e_in "$m" stat -c %Y "$FILE")
    e2e_in "$m" systemctl start "$UNIT"
    e2e_wait_active "$m" "$UNIT"
    e2e_policy "$m" "$UNIT" allow
    old=$(e2e_unit_pid "$m" "$UNIT")
    assert_line "$(environ_of "$m" "$old")" '^DEMO_ENV=1\.0$' "$c: environment of demo-env 1.0"

    e2e_publish "$m" v2 demo-env
    cursor=$(e2e_journal_cursor "$m")
    e2e_step "$c: apt-get upgrade" e2e_apt "$m" upgrade
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    assert_eq 2.0 "$(e2e_in "$m" dpkg-query -W -f='${Version}' demo-env)" "$c: installed demo-env"
    e2e_step "$c: wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | e2e_show_log "$c"

    if [[ $c == same-mtime ]]; then
        assert_eq "$before" "$(e2e_in "$m" stat -c %Y "$FILE")" "$c: mtime of $FILE across the upgrade"
    else
        assert_ne "$before" "$(e2e_in "$m" stat -c %Y "$FILE")" "$c: mtime of $FILE across the upgrade"
    fi
    new=$(e2e_unit_pid "$m" "$UNIT")
    assert_ne "$old" "$new" "$c: MainPID of $UNIT"
    assert_ne 0 "$new" "$c: MainPID of $UNIT"
    assert_line "$(environ_of "$m" "$new")" '^DEMO_ENV=2\.0$' "$c: environment of the restarted demo-env"
    assert_line "$log" "daemon-reload: unit file changed in this transaction: /usr$FILE; reloading systemd.s unit files before restarting demo-env\\.service" "$c: finish journal"
    assert_line "$log" 'demo-env\.service: restarted in .*, verified clean$' "$c: finish journal"
    assert_eq no "$(e2e_in "$m" systemctl show -p NeedDaemonReload --value "$UNIT")" "$c: NeedDaemonReload of $UNIT"

    cleanup "$m"
}

t() {
    local c
    for c in mtime same-mtime; do
        e2e_step "case $c" run_case "$1" "$c"
    done
}
e2e_test_main t
