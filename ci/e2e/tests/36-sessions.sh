#!/usr/bin/env bash
# Stale processes outside the system units, grouped by user and session
# (issue 15 part 5), on a real systemd: a daemon linked to libdemo runs as
# user e2esess (uid 1000) in a scope named like logind's,
# user-1000.slice/session-90.scope, and another as www-data in a scope of
# machine.slice (what a container's payload looks like). After an apt
# upgrade of libdemo1 both map the replaced library, and:
#   - `status` lists them under `e2esess @ session #90` and
#     `www-data, no session`;
#   - `status --json` has the two `sessions` entries with their pids;
#   - `status --batch` prints `NEEDRESTART-SESS: e2esess @ session #90`
#     and no line for the machine.slice process, as needrestart does;
#   - the textfile counts one stale session of one user, without names;
#   - the apt hook restarted neither (they are no system units).
# The scopes are made with systemd-run, not by logging in: logind names a
# session's scope this way, and restart-stale reads only the cgroup path.
#
# e2e: modes v2
# (cgroup v1 adds nothing: the session comes from the same cgroup path,
# which /proc/PID/cgroup gives in both; 02-v1-nested-slices and the unit
# tests cover v1 paths.)
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

USER_NAME=e2esess
SESSION=session-90.scope
MACHINE=e2e-payload.scope

# start_scope M UNIT SLICE USER: runs /usr/bin/demo-denied (linked to
# libdemo) in a new scope UNIT of SLICE as USER, in the background.
start_scope() {
    e2e_in "$1" sh -c "systemd-run --quiet --scope --unit=$2 --slice=$3 --uid=$4 \
        /usr/bin/demo-denied </dev/null >/dev/null 2>&1 &"
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(e2e_in "$1" systemctl show -p ActiveState --value "$2") == active ]] && return 0
        sleep 0.1
    done
    fail "$2 did not start"
}

t() {
    local m=$1 spid mpid text json batch prom rc
    local -A pid
    e2e_apt_setup "$m" pid
    e2e_in "$m" sh -c "id -u $USER_NAME >/dev/null 2>&1 || useradd -u 1000 -M -s /bin/sh $USER_NAME"
    start_scope "$m" "$SESSION" user-1000.slice "$USER_NAME"
    start_scope "$m" "$MACHINE" machine.slice www-data
    spid=$(e2e_unit_procs "$m" "$SESSION")
    mpid=$(e2e_unit_procs "$m" "$MACHINE")
    [[ $spid =~ ^[0-9]+$ && $mpid =~ ^[0-9]+$ ]] || fail "one process per scope, got '$spid' and '$mpid'"
    assert_eq "/user.slice/user-1000.slice/$SESSION" \
        "$(e2e_in "$m" sed -n 's/^0:://p' "/proc/$spid/cgroup")" "cgroup of the session process"

    e2e_publish "$m" v2
    e2e_step "apt-get upgrade" e2e_apt "$m" upgrade
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    assert_eq "$spid" "$(e2e_unit_procs "$m" "$SESSION")" "session process (never restarted)"
    assert_contains "$(e2e_maps "$m" "$spid")" "libdemo.so.1 (deleted)" "maps of the session process"

    rc=0
    text=$(e2e_in "$m" restart-stale status --textfile /run/e2e-sessions.prom) || rc=$?
    ((rc == 0 || rc == 3)) || fail "restart-stale status exited $rc"
    printf '%s\n' "$text" | e2e_show_log
    assert_line "$text" '^stale, outside system units, by user and session:$' "status"
    assert_line "$text" "^  $USER_NAME @ session #90\$" "status"
    assert_line "$text" "^    pid $spid \\(demo-denied\\) in /user\\.slice/user-1000\\.slice/$SESSION: " "status"
    assert_line "$text" '^  www-data, no session$' "status"
    assert_line "$text" "^    pid $mpid \\(demo-denied\\) in /machine\\.slice/$MACHINE: " "status"

    json=$(e2e_in "$m" restart-stale status --json) || true
    assert_contains "$json" "{\"kind\":\"session\",\"pids\":[$spid],\"session\":\"90\",\"uid\":1000,\"user\":\"$USER_NAME\"}" \
        "status --json sessions"
    assert_contains "$json" "{\"kind\":\"other\",\"pids\":[$mpid],\"session\":null,\"uid\":33,\"user\":\"www-data\"}" \
        "status --json sessions"

    batch=$(e2e_in "$m" restart-stale status --batch) || true
    printf '%s\n' "$batch" | e2e_show_log
    assert_line "$batch" "^NEEDRESTART-SESS: $USER_NAME @ session #90\$" "status --batch"
    assert_no_line "$batch" '^NEEDRESTART-SESS: www-data' "status --batch"

    prom=$(e2e_in "$m" cat /run/e2e-sessions.prom)
    assert_line "$prom" '^restart_stale_stale_sessions 1$' "textfile"
    assert_line "$prom" '^restart_stale_stale_session_users 1$' "textfile"
    assert_no_line "$prom" "$USER_NAME" "textfile"

    e2e_in "$m" systemctl stop "$SESSION" "$MACHINE"
    e2e_in "$m" rm -f /run/e2e-sessions.prom
    e2e_in "$m" userdel "$USER_NAME"
}
e2e_test_main t
