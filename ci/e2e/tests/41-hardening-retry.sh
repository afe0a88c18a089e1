#!/usr/bin/env bash
# Issue 13 item 2: a record whose run failed is kept, not deleted. While a
# manual run holds the restart lock (/run/restart-stale/lock, flock(1)
# standing in for it) for longer than the finish waits (10 s), an admin
# runs `apt-get upgrade` of libdemo1:
#   - the finish gives up on the lock, keeps the record as
#     taken.*.failed-1 and exits non-zero (the unit fails), restarting
#     nothing: demo-allowed keeps its PID;
#   - once the lock is free, the next apt transaction's finish acts on the
#     kept record too: demo-allowed restarted and clean, no record left.
# e2e: modes v2
# (v1 adds nothing: the spool and the lock do not depend on cgroups.)
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

HOLDER=e2e-lock-holder.service

# wait_finish_done NAME: like e2e_wait_apt_finish, but a kept record
# (taken.*.failed-N) is expected to stay: only the unit must be done.
wait_finish_done() {
    local name=$1 i state jobs
    for ((i = 0; i < 600; i++)); do
        state=$(e2e_in "$name" systemctl show -p ActiveState --value "$E2E_FINISH_UNIT")
        jobs=$(e2e_in "$name" systemctl list-jobs --no-legend "$E2E_FINISH_UNIT")
        if [[ $state != active && $state != activating && $state != deactivating && -z $jobs ]] &&
            ! e2e_in "$name" test -e /run/restart-stale/apt/pending; then
            return 0
        fi
        sleep 0.1
    done
    fail "$E2E_FINISH_UNIT in $name still busy after 60s (state '$state')"
}

t() {
    local m=$1 cursor log new kept t0
    local -A pid

    e2e_apt_setup "$m" pid
    e2e_in "$m" mkdir -p /run/restart-stale
    e2e_in "$m" systemd-run --quiet --unit="$HOLDER" --slice=user.slice \
        flock /run/restart-stale/lock sleep 120
    # shellcheck disable=SC2016 # expanded by the container's shell
    e2e_in "$m" sh -c 'for i in $(seq 50); do flock -n /run/restart-stale/lock true || exit 0; sleep 0.1; done; exit 1' ||
        fail "$HOLDER did not take the restart lock"

    e2e_publish "$m" v2
    cursor=$(e2e_journal_cursor "$m")
    t0=$(e2e_now_ms)
    e2e_step "apt-get upgrade (lock held)" e2e_apt "$m" upgrade
    e2e_step "wait for the failing finish" wait_finish_done "$m"
    e2e_measure "apt upgrade to failed finish (lock held): $(($(e2e_now_ms) - t0)) ms"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | sed 's/^/[e2e]   | /' >&2

    kept=$(e2e_in "$m" find /run/restart-stale/apt -maxdepth 1 -name 'taken.*.failed-1')
    assert_ne "" "$kept" "record kept as taken.*.failed-1"
    assert_line "$log" 'holds /run/restart-stale/lock; gave up after 10s, nothing was restarted' "finish journal"
    assert_line "$log" 'kept /run/restart-stale/apt/taken\..*\.failed-1 for the next run \(attempt 1 of 3 failed\)' "finish journal"
    assert_line "$log" "$E2E_FINISH_UNIT: (Main process exited, code=exited, status=[1-9]|Failed with result 'exit-code')" "finish journal (failed)"
    assert_eq "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed (lock held)"

    e2e_in "$m" systemctl stop "$HOLDER"
    cursor=$(e2e_journal_cursor "$m")
    # The next transaction: anything dpkg unpacks starts the finish again.
    e2e_step "apt-get install --reinstall demo-unrelated" e2e_apt "$m" install --reinstall demo-unrelated
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | sed 's/^/[e2e]   | /' >&2

    new=$(e2e_unit_pid "$m" demo-allowed.service)
    assert_ne "${pid[demo-allowed.service]}" "$new" "MainPID of demo-allowed (next run)"
    assert_ne 0 "$new" "MainPID of demo-allowed"
    assert_not_contains "$(e2e_maps "$m" "$new")" "(deleted)" "maps of the new demo-allowed"
    assert_line "$log" 'demo-allowed\.service: restarted in .*, verified clean$' "finish journal (next run)"
    assert_eq "" "$(e2e_in "$m" find /run/restart-stale/apt -maxdepth 1 -name 'taken.*')" "records left"
    assert_line "$log" "systemd\\[1\\]: $E2E_FINISH_UNIT: Deactivated successfully" "finish journal (next run)"
}
e2e_test_main t
