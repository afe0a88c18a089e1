#!/usr/bin/env bash
# The read-only scan under churn (issue 14, "Churn test"): $CHURN_SCANS
# scans (`restart-stale status --json` and `restart-stale -n --json`,
# alternating) while, at the same time,
#   - a loop in a system.slice unit and one in a user.slice unit fork and
#     exec short-lived processes as fast as they can (two at a time, so
#     processes also exit while others start);
#   - a loop starts short-lived transient units in system.slice
#     (systemd-run, each a 50 ms sleep, collected when done) and restarts
#     demo-unrelated.service, so unit cgroups appear and vanish under the
#     scanner (v1 and v2 read them differently: run in both modes).
# Long-lived stale processes live through all of it: libdemo1 was upgraded
# with the apt hook removed, so the daemons of demo-allowed, demo-denied and
# demo-slow1..5 keep mapping the deleted libdemo 1.0.
# Every scan must:
#   - exit 3, as documented for a scan that finds restarts needed (not 1
#     for an error, nothing else);
#   - log no error line, and "panicked" nowhere in its output;
#   - report every one of the stale daemons' PIDs (a miss would mean a
#     vanishing neighbour made the scan skip a live process);
#   - report no scan problem (`problems` empty): a process or cgroup that
#     vanished mid-scan is normal and not a problem.
# Printed: scans, errors, panics, missed stale processes, and the
# processes and units churned meanwhile. Failures are counted in the
# container and the first ones shown; the test fails on any.
# On bookworm only, in both modes: what churn can break is the cgroup
# readers, which differ by mode, not by release (trixie is v2 as
# bookworm v2 is).
# e2e: releases bookworm
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

: "${CHURN_SCANS:=1000}"
HOOK=/etc/apt/apt.conf.d/50restart-stale
SCAN=/root/e2e-churn-scan.sh
COUNTS=/run/e2e-churn

# The scan loop, run in the container: SCAN N PID... runs N scans and
# prints one line "scans S errors E panics P missed M problems Q", then the
# first failures in detail.
write_scan_loop() {
    e2e_in "$1" sh -c "cat >$SCAN"
}

# The fork loop of a churn unit: two short-lived processes at a time; on
# SIGTERM (systemctl stop) it writes how many it started to COUNTS/NAME.
fork_loop() {
    # shellcheck disable=SC2016 # expanded by the unit's bash
    printf 'n=0; trap '\''echo $n >%s/%s; exit 0'\'' TERM; while :; do /bin/true & /bin/true & wait; n=$((n + 2)); done' \
        "$COUNTS" "$1"
}

# The unit loop: transient units of 50 ms each, and demo-unrelated
# restarted every tenth round; counts units started.
unit_loop() {
    # shellcheck disable=SC2016 # expanded by the unit's bash
    printf 'n=0; trap '\''echo $n >%s/units; exit 0'\'' TERM; while :; do
        systemd-run --quiet --collect --no-block --unit="e2e-churn-u$n.service" /bin/sleep 0.05 || true
        n=$((n + 1))
        if ((n %% 10 == 0)); then systemctl restart --no-block demo-unrelated.service; n=$((n + 1)); fi
        sleep 0.02
    done' "$COUNTS"
}

start_churn() {
    local m=$1
    e2e_in "$m" rm -rf "$COUNTS"
    e2e_in "$m" mkdir -p "$COUNTS"
    e2e_in "$m" systemd-run --quiet --unit=e2e-churn-fork-sys.service --slice=system.slice \
        -p KillMode=mixed bash -c "$(fork_loop sys)"
    e2e_in "$m" systemd-run --quiet --unit=e2e-churn-fork-user.service --slice=user.slice \
        -p KillMode=mixed bash -c "$(fork_loop user)"
    e2e_in "$m" systemd-run --quiet --unit=e2e-churn-units.service --slice=system.slice \
        -p KillMode=mixed bash -c "$(unit_loop)"
    e2e_wait_active "$m" e2e-churn-fork-sys.service e2e-churn-fork-user.service e2e-churn-units.service
}

stop_churn() {
    local m=$1 i
    e2e_in "$m" systemctl stop e2e-churn-fork-sys.service e2e-churn-fork-user.service e2e-churn-units.service
    # The transient units left from the last rounds end within 50 ms.
    for ((i = 0; i < 100; i++)); do
        [[ -z $(e2e_in "$m" systemctl list-units --no-legend 'e2e-churn-u*') ]] && break
        sleep 0.1
    done
}

t() {
    local m=$1 u out rc=0 first pids=() summary t0 ms scans errors panics missed problems forks units
    local -A pid

    e2e_apt_setup "$m" pid
    # libdemo 2.0 without the hook: the daemons linked to it stay stale.
    e2e_in "$m" mv "$HOOK" /root/50restart-stale.off
    e2e_publish "$m" v2
    e2e_step "apt-get upgrade without the hook" e2e_apt "$m" upgrade >/dev/null
    e2e_in "$m" mv /root/50restart-stale.off "$HOOK"
    for u in demo-allowed.service demo-denied.service demo-slow1.service demo-slow2.service \
        demo-slow3.service demo-slow4.service demo-slow5.service; do
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u (not restarted)"
        assert_contains "$(e2e_maps "$m" "${pid[$u]}")" "libdemo.so.1 (deleted)" "maps of $u"
        pids+=("${pid[$u]}")
    done

    # One quiet scan first: the loop's checks must hold without churn.
    first=$(e2e_run "$m" restart-stale status --json 2>/dev/null) || rc=$?
    assert_eq 3 "$rc" "exit status of a quiet status scan"
    for u in "${pids[@]}"; do
        assert_line "$first" "\"pid\":${u}[,}]" "quiet status report"
    done

    write_scan_loop "$m" <<'EOF'
n=$1
shift
scans=0 errors=0 panics=0 missed=0 problems=0 shown=0
out=$(mktemp) err=$(mktemp)
# show WHAT: print the first few failures in full.
show() {
    shown=$((shown + 1))
    ((shown <= 5)) || return 0
    echo "scan $scans ($*): exit $rc"
    sed 's/^/  stderr: /' "$err" | head -n 20
    head -c 2000 "$out" | sed 's/^/  stdout: /'
    echo
}
for ((i = 1; i <= n; i++)); do
    if ((i % 2)); then args=(status --json); else args=(-n --json); fi
    rc=0
    restart-stale "${args[@]}" >"$out" 2>"$err" || rc=$?
    scans=$((scans + 1))
    if ((rc != 3)) || grep -qE '^(restart-stale: )?error: |^<3>' "$err"; then
        errors=$((errors + 1))
        show "${args[*]}: error"
    fi
    if grep -q panicked "$out" "$err"; then
        panics=$((panics + 1))
        show "${args[*]}: panic"
    fi
    for p in "$@"; do
        if ! grep -qE "\"pid\":$p[,}]" "$out"; then
            missed=$((missed + 1))
            show "${args[*]}: pid $p missing"
        fi
    done
    if ! grep -q '"problems":\[\]' "$out"; then
        problems=$((problems + 1))
        show "${args[*]}: problems"
    fi
done
echo "scans $scans errors $errors panics $panics missed $missed problems $problems"
rm -f "$out" "$err"
EOF

    e2e_step "start churn" start_churn "$m"
    t0=$(e2e_now_ms)
    out=$(e2e_step "$CHURN_SCANS scans under churn" e2e_run "$m" bash "$SCAN" "$CHURN_SCANS" "${pids[@]}")
    ms=$(($(e2e_now_ms) - t0))
    e2e_step "stop churn" stop_churn "$m"
    printf '%s\n' "$out" | e2e_show_log

    forks=$(($(e2e_in "$m" cat "$COUNTS/sys") + $(e2e_in "$m" cat "$COUNTS/user")))
    units=$(e2e_in "$m" cat "$COUNTS/units")
    summary=$(tail -n 1 <<<"$out")
    read -r _ scans _ errors _ panics _ missed _ problems <<<"$summary"
    e2e_measure "churn: $scans scans in $ms ms ($((ms / scans)) ms each), errors $errors, panics $panics," \
        "missed $missed of $((scans * ${#pids[@]})) stale processes, problems $problems;" \
        "churned $forks processes, $units units"
    assert_eq "$CHURN_SCANS" "$scans" "scans run"
    assert_eq 0 "$errors" "scans with an error (exit status other than 3, or an error line)"
    assert_eq 0 "$panics" "scans that panicked"
    assert_eq 0 "$missed" "stale processes missed"
    assert_eq 0 "$problems" "scans reporting problems"
    ((forks > 0 && units > 0)) || fail "the churn did not run (processes $forks, units $units)"

    # The stale daemons lived through the scans (else "missed 0" proves little).
    for u in demo-allowed.service demo-denied.service demo-slow1.service; do
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u after the scans"
    done
    e2e_in "$m" rm -rf "$COUNTS" "$SCAN"
}
e2e_test_main t
