#!/usr/bin/env bash
# The hooks never fail or block apt (issue 4, "Done when" 3): with
# /usr/bin/restart-stale
#   - removed (package removed but its apt.conf.d conffile kept),
#   - replaced by a script that exits 1,
#   - replaced by a script that hangs,
# `apt-get upgrade` still succeeds, in bounded time, and the upgrade is
# done (dpkg --audit clean). Each case upgrades one more demo package.
#
# The bound for the hanging case: each hook must bound itself (docs/apt.md:
# pre-install runs under `timeout 20`, post-invoke under `timeout 30`), so
# one dpkg run may cost at most about 50 s. The apt-get unit gets RuntimeMaxSec=$HANG_BOUND;
# if apt is still blocked then, systemd kills it (SIGKILL 5 s later if
# need be) and the test fails.
# The time each case took is logged as a measurement.
# Not on cgroup v1: a broken or hanging tool is apt's wrapper and the
# hook's exit status, which no cgroup mode changes (51 s of it is the
# hanging-tool case).
# e2e: modes v2
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

: "${HANG_BOUND:=120}"

# bounded_upgrade NAME SECS: `apt-get upgrade` as e2e_apt runs it, killed by
# systemd after SECS; sets $rc, $ms and $out.
bounded_upgrade() {
    local m=$1 secs=$2 t0
    t0=$(e2e_now_ms)
    rc=0
    out=$(e2e_in "$m" systemd-run --quiet --wait --pipe --collect --slice=user.slice \
        --property=RuntimeMaxSec="$secs" --property=TimeoutStopSec=5 --setenv=DEBIAN_FRONTEND=noninteractive -- \
        apt-get -y -q -o Dpkg::Options::=--force-confold upgrade </dev/null 2>&1) || rc=$?
    ms=$(($(e2e_now_ms) - t0))
    printf '%s\n' "$out" | e2e_show_log
}

# broken_case NAME WHAT SECS PKG...: publish PKGs at 2.0, upgrade, check.
broken_case() {
    local m=$1 what=$2 secs=$3 p
    shift 3
    e2e_publish "$m" v2 "$@"
    bounded_upgrade "$m" "$secs"
    e2e_measure "apt-get upgrade with restart-stale $what took $ms ms"
    if ((rc != 0)); then
        fail "apt-get upgrade with restart-stale $what failed (exit $rc after $ms ms; RuntimeMaxSec=$secs)"
    fi
    e2e_log "ok: apt-get upgrade with restart-stale $what exited 0 after $ms ms"
    p=${*: -1}
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    assert_eq 2.0 "$(e2e_in "$m" dpkg-query -W -f='${Version}' "$p")" "installed $p"
    assert_eq "" "$(e2e_in "$m" dpkg --audit)" "dpkg --audit"
}

t() {
    local m=$1 rc ms out
    e2e_step "reset" e2e_demo_reset "$m"
    e2e_step "install restart-stale" e2e_require_tool "$m"
    e2e_step "install demo packages" e2e_demo_install "$m"
    e2e_wait_apt_finish "$m"
    e2e_policy "$m" demo-allowed.service allow

    e2e_in "$m" rm /usr/bin/restart-stale
    e2e_step "binary removed" broken_case "$m" "removed" 60 libdemo1

    e2e_in "$m" sh -c 'printf "#!/bin/sh\nexit 1\n" >/usr/bin/restart-stale && chmod 755 /usr/bin/restart-stale'
    e2e_step "binary exits 1" broken_case "$m" "exiting 1" 60 libdemo1 demo-unrelated

    e2e_in "$m" sh -c 'printf "#!/bin/sh\nexec sleep infinity\n" >/usr/bin/restart-stale && chmod 755 /usr/bin/restart-stale'
    e2e_step "binary hangs" broken_case "$m" "hanging" "$HANG_BOUND" libdemo1 demo-unrelated demo-denied

    # Leave a working tool behind for the next test.
    e2e_require_tool "$m"
}
e2e_test_main t
