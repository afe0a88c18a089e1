#!/usr/bin/env bash
# What the apt hooks cost an admin: the wall time of an apt transaction
# that touches no running service (`apt-get install --reinstall libdemo1`
# with no demo daemon installed), with the hook snippet in
# /etc/apt/apt.conf.d and without it, RUNS times each, alternating.
# Logged as measurements (medians), never asserted on time.
#
# The real work runs afterwards in restart-stale-apt.service, outside apt,
# after a 2 s quiet period on the dpkg lock; its own run time (from the
# record being taken to the unit finishing) is logged too. Asserted: every
# transaction succeeds, and each hooked one is acted on with nothing stale.
# A measurement: bookworm's v2 and v1 give the figures; trixie would
# only add another 34 s of numbers.
# e2e: releases bookworm
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

: "${RUNS:=5}"
CONF=/etc/apt/apt.conf.d/50restart-stale

# reinstall NAME: time one transaction; sets $ms.
reinstall() {
    local m=$1 t0
    t0=$(e2e_now_ms)
    e2e_apt "$m" install --reinstall libdemo1 >/dev/null 2>&1 || fail "apt-get install --reinstall libdemo1 failed"
    ms=$(($(e2e_now_ms) - t0))
}

# finish_work LOG: ms from the finish's transaction line to the unit's end.
finish_work() {
    local a b
    a=$(grep -m 1 'apt transaction (' <<<"$1" | cut -d' ' -f1) || fail "finish did not act"
    b=$(grep -m 1 "$E2E_FINISH_UNIT: Deactivated successfully" <<<"$1" | cut -d' ' -f1) ||
        fail "finish did not end successfully"
    awk -v a="${a/./}" -v b="${b/./}" 'BEGIN { printf "%.1f\n", (b - a) / 1000 }'
}

t() {
    local m=$1 i ms cursor log with=() without=() work=()
    e2e_step "reset" e2e_demo_reset "$m"
    e2e_step "install restart-stale" e2e_require_tool "$m"
    e2e_publish "$m" v1
    e2e_apt "$m" install libdemo1 >/dev/null
    e2e_wait_apt_finish "$m"
    e2e_in "$m" cp "$CONF" /root/50restart-stale.saved

    for ((i = 0; i < RUNS; i++)); do
        e2e_in "$m" cp /root/50restart-stale.saved "$CONF"
        cursor=$(e2e_journal_cursor "$m")
        reinstall "$m"
        with+=("$ms")
        e2e_wait_apt_finish "$m"
        log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
        assert_line "$log" 'apt transaction \(1 hook runs, .*\): libdemo1:[a-z0-9]+ 1\.0 → 1\.0$' "finish journal"
        assert_no_line "$log" ': restarting ' "finish journal"
        work+=("$(finish_work "$log")")

        e2e_in "$m" rm "$CONF"
        cursor=$(e2e_journal_cursor "$m")
        reinstall "$m"
        without+=("$ms")
        assert_eq "" "$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")" "finish journal without the hooks"
    done
    e2e_in "$m" cp /root/50restart-stale.saved "$CONF"

    local mw mo
    mw=$(e2e_median "${with[@]}")
    mo=$(e2e_median "${without[@]}")
    e2e_log "apt-get install --reinstall libdemo1, ms with hooks: ${with[*]}; without: ${without[*]}"
    e2e_measure "apt hook overhead: median $mw ms with the hooks, $mo ms without ($RUNS runs each): +$((mw - mo)) ms per transaction"
    e2e_measure "apt-hook finish (outside apt, after the 2 s quiet period): median $(e2e_median "${work[@]}") ms of work (${work[*]})"
}
e2e_test_main t
