#!/usr/bin/env bash
# Entry point of restart-stale's real-systemd end-to-end tests (.ci/run
# calls this, as root).
#
#   ci/e2e/run.sh [TEST.sh...]
#
# Runs every test script (default: smoke.sh, then tests/*.sh in name order)
# once per cgroup mode in E2E_MODES (default "v2 v1"). Per mode one booted
# container is shared by the tests, in order, because a boot plus a fresh
# rootfs costs ~2-3 s; it is replaced by a fresh one
#   - before a test whose script contains a line "# e2e: fresh-machine"
#     (for tests that change the system in ways a later test would notice),
#   - after a test that failed (the next test must not inherit its mess).
#
# Test script contract (see tests/README.md): bash, sources lib.sh, ends with
# `e2e_test_main FUNC`; gets the machine in E2E_MACHINE and the mode in
# E2E_MODE; starts with e2e_demo_reset if it uses the demo packages; exits 0
# for pass, 77 for skip (e.g. RESTART_STALE_DEB unset), anything else fails.
#
# Prints one line per test and mode, then "e2e: N passed, N failed,
# N skipped"; exits non-zero if any test failed.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${E2E_TEST_TIMEOUT:=300}"

e2e_init
e2e_host_deps
t_start=$(e2e_now_ms)

if (($#)); then
    tests=("$@")
else
    shopt -s nullglob
    tests=("$E2E_DIR/smoke.sh" "$E2E_DIR"/tests/*.sh)
    shopt -u nullglob
fi

e2e_step "build demo debs" e2e_build_debs
if [[ -n ${RESTART_STALE_DEB:-} ]]; then
    [[ -f $RESTART_STALE_DEB ]] || fail "RESTART_STALE_DEB=$RESTART_STALE_DEB does not exist"
    RESTART_STALE_DEB=$(realpath "$RESTART_STALE_DEB")
    export RESTART_STALE_DEB
fi

passed=0
failed=0
skipped=0
failures=()
machine=
rootfs=
seq=0

# fresh_machine MODE: shut down the current machine (if any), boot a new one.
fresh_machine() {
    local mode=$1
    if [[ -n $machine ]]; then
        e2e_step "shutdown $machine" e2e_shutdown "$machine"
        rm -rf --one-file-system "$rootfs"
    fi
    seq=$((seq + 1))
    machine=rse2e-$mode-$$-$seq
    rootfs=$E2E_WORK_DIR/$machine
    e2e_step "rootfs $machine" e2e_rootfs "$rootfs"
    e2e_step "boot $machine" e2e_boot "$machine" "$rootfs" "$mode"
}

for mode in ${E2E_MODES:-v2 v1}; do
    machine=
    fresh=1
    for t in "${tests[@]}"; do
        label="$(basename "$t") [$mode]"
        if ((fresh)) || grep -q '^# e2e: fresh-machine' "$t"; then
            fresh_machine "$mode"
        fi
        fresh=0
        e2e_log "==== $label on $machine"
        t0=$(e2e_now_ms)
        rc=0
        E2E_MACHINE=$machine E2E_MODE=$mode \
            timeout --kill-after=10 "$E2E_TEST_TIMEOUT" bash "$t" || rc=$?
        ms=$(($(e2e_now_ms) - t0))
        case $rc in
            0)
                passed=$((passed + 1))
                e2e_log "==== PASS $label ($ms ms)"
                ;;
            77)
                skipped=$((skipped + 1))
                e2e_log "==== SKIP $label ($ms ms)"
                ;;
            *)
                failed=$((failed + 1))
                failures+=("$label")
                ((rc == 124)) && e2e_log "$label timed out after ${E2E_TEST_TIMEOUT}s"
                e2e_log "==== FAIL $label (exit $rc, $ms ms)"
                e2e_debug_dump "$machine"
                fresh=1
                ;;
        esac
    done
    if [[ -n $machine ]]; then
        e2e_step "shutdown $machine" e2e_shutdown "$machine"
        rm -rf --one-file-system "$rootfs"
    fi
done

e2e_log "total $(($(e2e_now_ms) - t_start)) ms"
for f in "${failures[@]}"; do
    e2e_log "failed: $f"
done
echo "e2e: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
