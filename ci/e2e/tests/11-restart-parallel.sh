#!/usr/bin/env bash
# Restart jobs run in parallel (issue 3): five stale allowed units, each
# taking 1 s to start (demo-slow1..5, ExecStartPre=/bin/sleep 1), restarted
# by one `restart-stale` run should take about 1 s, not 5.
#
# Logged as measurements, never asserted on time (a loaded CI machine must
# not fail this): one run with all five allowed, and for comparison five
# runs that each may restart only one of them (one policy link at a time).
# Asserted: every unit restarted, new PID, maps clean, exit status 0.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

SLOW=(demo-slow1.service demo-slow2.service demo-slow3.service demo-slow4.service demo-slow5.service)

# make_stale NAME VERSION: install libdemo1 at VERSION (1.0 or 2.0) with
# apt; every running demo-slow then maps the deleted previous library.
make_stale() {
    local m=$1 ver=$2
    if [[ $ver == 2.0 ]]; then
        e2e_publish "$m" v2
    else
        e2e_publish "$m" v1
    fi
    e2e_apt "$m" install --allow-downgrades "libdemo1=$ver" >/dev/null
    local u
    for u in "${SLOW[@]}"; do
        assert_contains "$(e2e_maps "$m" "$(e2e_unit_pid "$m" "$u")")" "libdemo.so.1 (deleted)" "maps of $u"
    done
}

# check_restarted NAME: every demo-slow unit has a new, clean MainPID
# (compared with the global pid array).
check_restarted() {
    local m=$1 u new
    for u in "${SLOW[@]}"; do
        new=$(e2e_unit_pid "$m" "$u")
        assert_ne "${pid[$u]}" "$new" "MainPID of $u"
        assert_ne 0 "$new" "MainPID of $u"
        assert_not_contains "$(e2e_maps "$m" "$new")" "(deleted)" "maps of the new $u"
        pid[$u]=$new
    done
}

# timed_run NAME: restart-stale as an admin would; sets $ms (wall time seen
# from the host) and $took (the tool's own "restart jobs took" figure).
timed_run() {
    local m=$1 t0 out rc=0
    t0=$(e2e_now_ms)
    out=$(e2e_run "$m" restart-stale 2>&1) || rc=$?
    ms=$(($(e2e_now_ms) - t0))
    printf '%s\n' "$out" | grep '^restart-stale: ' | e2e_show_log
    assert_eq 0 "$rc" "exit status of restart-stale"
    took=$(sed -n 's/^restart-stale: summary: .*restart jobs took \([0-9.]*s\)$/\1/p' <<<"$out")
}

t() {
    local m=$1 u i ms took seq_ms=0 seq_took=()
    local -A pid

    e2e_step "reset" e2e_demo_reset "$m"
    e2e_remove_tool "$m"
    e2e_step "install demo packages" e2e_demo_install "$m"
    e2e_step "install restart-stale" e2e_require_tool "$m"
    # The tool is installed, so apt runs its hooks; with no policy link yet
    # they restart nothing. Wait for the install's finish to be done.
    e2e_wait_apt_finish "$m"
    for u in "${SLOW[@]}"; do
        pid[$u]=$(e2e_unit_pid "$m" "$u")
    done

    # ---- parallel: all five allowed, one run
    e2e_step "make stale (libdemo1 2.0)" make_stale "$m" 2.0
    e2e_wait_apt_finish "$m"
    for u in "${SLOW[@]}"; do
        e2e_policy "$m" "$u" allow
    done
    timed_run "$m"
    check_restarted "$m"
    e2e_measure "5 parallel restarts took $ms ms (restart-stale: restart jobs took $took)"

    # ---- sequential: one policy link at a time, five runs
    for u in "${SLOW[@]}"; do
        e2e_policy "$m" "$u" none
    done
    e2e_step "make stale (libdemo1 1.0)" make_stale "$m" 1.0
    e2e_wait_apt_finish "$m"
    for i in "${!SLOW[@]}"; do
        u=${SLOW[$i]}
        ((i > 0)) && e2e_policy "$m" "${SLOW[$((i - 1))]}" none
        e2e_policy "$m" "$u" allow
        timed_run "$m"
        seq_ms=$((seq_ms + ms))
        seq_took+=("$took")
    done
    check_restarted "$m"
    e2e_measure "5 sequential restarts took $seq_ms ms (5 runs; restart jobs took ${seq_took[*]})"
}
e2e_test_main t
