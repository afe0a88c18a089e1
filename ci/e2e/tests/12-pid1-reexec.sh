#!/usr/bin/env bash
# PID 1 runs stale code (issue 12): an upgrade of systemd replaces
# libsystemd-shared, which systemd itself maps. restart-stale cannot
# restart PID 1; it re-executes it (Manager.Reexecute), which keeps every
# unit running. The test replaces the library the way dpkg does (write a
# copy next to it, rename it over the original), so PID 1 maps a deleted
# inode, and checks:
#   - /proc/1/maps shows the library "(deleted)";
#   - `restart-stale -n` says it would re-execute PID 1, exits 3, and
#     changes nothing; `--no-reexec` says re-exec is off and leaves PID 1
#     stale;
#   - a real run re-executes PID 1 once (systemd logs "Reexecuting." once),
#     logs "PID 1: re-executed in …, verified clean", exits 0, and
#     /proc/1/maps is clean afterwards;
#   - the container did not reboot: its PID 1 is the same process (host
#     PID and start time), systemd's userspace start timestamp is
#     unchanged, and a unit started before (the witness) still has its
#     MainPID and activation timestamp.
# The tool runs in a transient unit as in the other tests, but writes its
# output to a file instead of `systemd-run --wait --pipe`: systemd-run
# talks to PID 1 on its private socket, which the re-exec closes.
# Afterwards the other daemons that map the deleted library (journald,
# logind) are restarted by hand, so a later test finds nothing stale.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

WITNESS=e2e-witness.service
OUT=/run/e2e-pid1.out

# run_tool NAME ARGS...: restart-stale ARGS in a transient unit; waits for
# it (up to 120 s) and sets $out (stdout and stderr) and $rc.
RUNS=0
run_tool() {
    local m=$1 i unit
    shift
    # A new name each time: the previous unit may not be collected yet.
    RUNS=$((RUNS + 1))
    unit=e2e-pid1-run$RUNS.service
    e2e_in "$m" rm -f "$OUT" "$OUT.rc"
    # shellcheck disable=SC2016 # expanded by the shell inside
    e2e_in "$m" systemd-run --quiet --collect --unit="$unit" --slice=user.slice \
        --property=StandardOutput=file:"$OUT" \
        sh -c 'restart-stale "$@"; echo $? >'"$OUT.rc" restart-stale "$@"
    for ((i = 0; i < 1200; i++)); do
        e2e_in "$m" test -s "$OUT.rc" && break
        sleep 0.1
    done
    e2e_in "$m" test -s "$OUT.rc" || fail "restart-stale $* did not finish in 120 s"
    rc=$(e2e_in "$m" cat "$OUT.rc")
    out=$(e2e_in "$m" cat "$OUT")
    printf '%s\n' "$out" | e2e_show_log
    e2e_log "restart-stale $* exited $rc"
}

# leader_start NAME: host PID and start time (clock ticks since the host's
# boot) of NAME's PID 1; a new PID 1 would differ in at least the latter.
leader_start() {
    local leader
    leader=$(_e2e_state "$1" leader)
    [[ -d /proc/$leader ]] || fail "the container's PID 1 (host PID $leader) is gone"
    printf '%s %s\n' "$leader" "$(sed 's/^.*) //' "/proc/$leader/stat" | cut -d' ' -f20)"
}

# unit_stamp NAME UNIT: MainPID and activation time of UNIT.
unit_stamp() {
    e2e_in "$1" systemctl show -p MainPID -p ActiveEnterTimestampMonotonic --value "$2" | paste -sd' '
}

# restart_stale_daemons NAME LIB: restart every running service whose main
# process still maps the deleted LIB, then check that no process does.
restart_stale_daemons() {
    local m=$1 lib=$2 u p
    for u in $(e2e_in "$m" systemctl list-units --type=service --state=running --plain --no-legend |
        awk '{ print $1 }'); do
        p=$(e2e_unit_pid "$m" "$u")
        [[ $p != 0 ]] || continue
        if e2e_in "$m" grep -qF "$lib (deleted)" "/proc/$p/maps" 2>/dev/null; then
            e2e_log "restarting $u (PID $p maps the old $lib)"
            e2e_in "$m" systemctl restart "$u"
        fi
    done
    # shellcheck disable=SC2016 # expanded by the shell inside
    assert_eq "" "$(e2e_in "$m" sh -c 'grep -lF "$1 (deleted)" /proc/[0-9]*/maps 2>/dev/null' sh "$lib")" \
        "processes mapping the old $lib"
}

t() {
    local m=$1 lib maps out rc cursor log n before_pid1 before_us before_w state

    e2e_step "reset" e2e_demo_reset "$m"
    e2e_step "install restart-stale" e2e_require_tool "$m"
    e2e_wait_apt_finish "$m"
    e2e_in "$m" systemd-run --quiet --unit="$WITNESS" --collect sleep infinity
    e2e_wait_active "$m" "$WITNESS"

    # The library as PID 1 maps it (the path depends on the systemd build).
    maps=$(e2e_maps "$m" 1)
    lib=$(awk '$6 ~ /\/libsystemd-shared-[^/]*\.so$/ { print $6; exit }' <<<"$maps")
    [[ -n $lib ]] || fail "PID 1 maps no libsystemd-shared-*.so"
    e2e_log "PID 1 maps $lib"
    assert_not_contains "$maps" "(deleted)" "/proc/1/maps before the upgrade"

    before_pid1=$(leader_start "$m")
    before_us=$(e2e_in "$m" systemctl show -p UserspaceTimestampMonotonic --value)
    before_w=$(unit_stamp "$m" "$WITNESS")
    e2e_log "PID 1 (host PID, start time): $before_pid1; userspace started at $before_us us; witness: $before_w"

    # What dpkg does when it upgrades systemd: unpack next to the file,
    # rename over it. The content is the same, the inode is new.
    # shellcheck disable=SC2016 # expanded by the shell inside
    e2e_in "$m" sh -c 'cp -p "$1" "$1.dpkg-new" && mv -f "$1.dpkg-new" "$1"' sh "$lib"
    assert_contains "$(e2e_maps "$m" 1)" "$lib (deleted)" "/proc/1/maps after the replacement"

    # ---- dry run: says it, changes nothing
    run_tool "$m" -n
    assert_eq 3 "$rc" "exit status of restart-stale -n (a re-exec needed, not done)"
    assert_line "$out" '^restart-stale: PID 1: would re-execute systemd \(it runs stale code\)$' "output of -n"
    assert_contains "$(e2e_maps "$m" 1)" "$lib (deleted)" "/proc/1/maps after -n"

    # ---- re-exec turned off
    cursor=$(e2e_journal_cursor "$m")
    run_tool "$m" --no-reexec
    assert_eq 0 "$rc" "exit status of restart-stale --no-reexec"
    assert_line "$out" '^restart-stale: PID 1: runs stale code; not re-executing it \(re-exec is turned off\)$' \
        "output of --no-reexec"
    assert_contains "$(e2e_maps "$m" 1)" "$lib (deleted)" "/proc/1/maps after --no-reexec"
    assert_no_line "$(e2e_journal "$m" "$cursor" _PID=1)" 'Reexecuting' "PID 1's journal after --no-reexec"

    # ---- the real run
    cursor=$(e2e_journal_cursor "$m")
    run_tool "$m"
    assert_eq 0 "$rc" "exit status of restart-stale"
    assert_line "$out" '^restart-stale: PID 1: re-executing systemd \(it runs stale code\)$' "output"
    assert_line "$out" '^restart-stale: PID 1: re-executed in [0-9.]+s, verified clean$' "output"
    maps=$(e2e_maps "$m" 1)
    assert_contains "$maps" "$lib" "/proc/1/maps after the re-exec"
    assert_not_contains "$maps" "(deleted)" "/proc/1/maps after the re-exec"
    log=$(e2e_journal "$m" "$cursor" _PID=1)
    printf '%s\n' "$log" | e2e_show_log pid1
    n=$(grep -c 'Reexecuting' <<<"$log" || true)
    assert_eq 1 "$n" "re-executions of PID 1 in its journal"

    # ---- not a reboot
    assert_eq "$before_pid1" "$(leader_start "$m")" "PID 1 (host PID, start time)"
    assert_eq "$before_us" "$(e2e_in "$m" systemctl show -p UserspaceTimestampMonotonic --value)" \
        "systemd's userspace start timestamp"
    assert_eq "$before_w" "$(unit_stamp "$m" "$WITNESS")" "witness MainPID and activation time"
    state=$(e2e_in "$m" systemctl is-system-running) || true
    [[ $state == running || $state == degraded ]] || fail "system state after the re-exec: '$state'"
    e2e_log "ok: system state '$state'"

    # ---- leave nothing stale behind
    e2e_in "$m" systemctl stop "$WITNESS"
    restart_stale_daemons "$m" "$lib"
    e2e_in "$m" rm -f "$OUT" "$OUT.rc"
}
e2e_test_main t
