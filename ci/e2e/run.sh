#!/usr/bin/env bash
# Entry point of restart-stale's real-systemd end-to-end tests (.ci/run
# calls this, as root).
#
#   ci/e2e/run.sh [TEST.sh...]
#
# Runs every test script (default: smoke.sh, then tests/*.sh in name order)
# on each Debian release in E2E_RELEASES (default "bookworm trixie sid"),
# once per cgroup mode of that release (bookworm: v2 and v1; trixie and
# sid: v2; see e2e_release_modes in lib.sh), narrowed by E2E_MODES if set.
# While a test runs, E2E_SUITE holds the release's codename. A script runs
# on the releases of its header line "# e2e: releases bookworm trixie"
# (codenames); without one on bookworm and trixie, so sid boots only for
# the scripts that name it. Per release and mode one booted container is
# shared by the tests, in order, because a boot plus a fresh rootfs costs
# ~2-3 s; it is replaced by a fresh one
#   - before a test whose script contains a line "# e2e: fresh-machine"
#     (for tests that change the system in ways a later test would notice),
#   - after a test that failed (the next test must not inherit its mess).
# A script with a line "# e2e: modes v2" runs only in the modes named there
# (for slow tests that the other mode would add nothing to). A release or
# mode a script leaves out is reported as "not run", which is neither a
# pass nor a skip. Each release's root filesystem is debootstrapped once
# into E2E_CACHE_DIR (a few minutes) and cached there, keyed by release.
#
# Test script contract (see tests/README.md): bash, sources lib.sh, ends with
# `e2e_test_main FUNC`; gets the machine in E2E_MACHINE and the mode in
# E2E_MODE; starts with e2e_demo_reset if it uses the demo packages; exits 0
# for pass, 77 for skip (e.g. RESTART_STALE_DEB unset), anything else fails.
#
# The tool under test is the .deb in RESTART_STALE_DEB. If that is unset,
# run.sh builds it first with packaging/build-deb.sh (installing cargo-deb
# if it is missing) and exports it, so no test skips for want of it.
#
# Prints one line per test, release and mode, then a summary: wall time per
# test, the tests' measurements ("[e2e] measure: ..."), per release
# "e2e[RELEASE]: N passed, N failed, N skipped", and over all of them
# "e2e: N passed, N failed, N skipped" (CI greps this line). Exits non-zero if any test failed, and also if any test
# skipped: a skip in CI would look green while proving nothing. For a local
# run where skips are expected, set E2E_ALLOW_SKIP=1.
set -euo pipefail
# Lanes: without E2E_RELEASES (or E2E_SUITE) from the caller, the releases
# run in two lanes side by side, "bookworm" and "trixie sid", each a child
# run.sh with its own machines and log, printed in turn when both are done
# (E2E_LANES: lanes separated by commas; "none" for one lane). The tests
# spend most of their time waiting on their containers, so two lanes on a
# 2-core machine take little more than the longer one alone.
if [[ -z ${E2E_LANE:-} && -z ${E2E_RELEASES:-} && -z ${E2E_SUITE:-} ]]; then
    : "${E2E_LANES:=bookworm,trixie sid}"
else
    E2E_LANES=none
fi
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${E2E_TEST_TIMEOUT:=300}"

e2e_init
e2e_check_releases
e2e_host_deps
t_start=$(e2e_now_ms)

if (($#)); then
    tests=("$@")
else
    shopt -s nullglob
    tests=("$E2E_DIR/smoke.sh" "$E2E_DIR"/tests/*.sh)
    shopt -u nullglob
fi
for t in "${tests[@]}"; do
    e2e_check_headers "$t"
done

# build_tool_deb: build restart-stale's .deb from this checkout and set
# RESTART_STALE_DEB. Under sudo, build as the invoking user (a login shell,
# for their cargo), so that target/ does not fill with root-owned files.
# shellcheck disable=SC2317 # called through e2e_step
build_tool_deb() {
    local out
    out=$(mktemp "$E2E_WORK_DIR/build-deb.XXXXXX")
    if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        # shellcheck disable=SC2016 # expanded by the user's shell
        runuser -u "$SUDO_USER" -- bash -lc 'cd "$1" &&
            { command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --quiet; } &&
            packaging/build-deb.sh' build-deb "$E2E_REPO_ROOT" >"$out"
    else
        if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
            PATH=$HOME/.cargo/bin:$PATH
        fi
        command -v cargo >/dev/null || fail "cargo not found: cannot build the .deb (or set RESTART_STALE_DEB)"
        if ! command -v cargo-deb >/dev/null; then
            e2e_log "installing cargo-deb (cargo install cargo-deb --locked)"
            cargo install cargo-deb --locked --quiet
        fi
        "$E2E_REPO_ROOT/packaging/build-deb.sh" >"$out"
    fi
    # build-deb.sh prints the .deb's path on its last line.
    RESTART_STALE_DEB=$(tail -n 1 "$out")
    rm -f "$out"
    [[ -f $RESTART_STALE_DEB ]] || fail "packaging/build-deb.sh did not name a .deb"
    e2e_log "built $RESTART_STALE_DEB"
}

e2e_step "build demo debs" e2e_build_debs
if [[ -z ${RESTART_STALE_DEB:-} ]]; then
    e2e_step "build restart-stale .deb" build_tool_deb
fi
[[ -f $RESTART_STALE_DEB ]] || fail "RESTART_STALE_DEB=$RESTART_STALE_DEB does not exist"
RESTART_STALE_DEB=$(realpath "$RESTART_STALE_DEB")
export RESTART_STALE_DEB
measure_dir=$(mktemp -d "$E2E_WORK_DIR/measure.XXXXXX")
E2E_OWNED_DIRS+=("$measure_dir") # removed by the EXIT trap
export E2E_MEASURE_FILE=$measure_dir/lines

# run_lanes: run.sh once per lane, side by side, with the debs built above;
# then their logs in turn, their tallies, and one summary. Exit status 1 if
# a lane failed.
run_lanes() {
    local -a lanes=() pids=()
    local dir i rc=0 line p f s n a b c d
    IFS=',' read -r -a lanes <<<"$E2E_LANES"
    dir=$(mktemp -d "$E2E_WORK_DIR/lanes.XXXXXX")
    E2E_OWNED_DIRS+=("$dir")
    for i in "${!lanes[@]}"; do
        E2E_LANE=$((i + 1)) E2E_RELEASES=${lanes[$i]} "$0" "${tests[@]}" >"$dir/$i.log" 2>&1 &
        pids[i]=$!
        e2e_log "lane $((i + 1)): ${lanes[$i]} (log in $dir/$i.log until it ends)"
    done
    # A killed run.sh takes its lanes with it. (The pids are fixed now;
    # st is the trap's own variable; set +e, or a lane that is already
    # gone would end the trap before the cleanup.)
    # shellcheck disable=SC2064,SC2154
    trap "st=\$?; set +e; kill ${pids[*]} 2>/dev/null; (exit \$st); e2e_cleanup" EXIT
    for i in "${!lanes[@]}"; do
        wait "${pids[$i]}" || rc=1
    done
    p=0 f=0 s=0 n=0
    for i in "${!lanes[@]}"; do
        e2e_log "==================== lane $((i + 1)): ${lanes[$i]}"
        cat "$dir/$i.log"
        line=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$dir/$i.log" | tail -n 1) || {
            e2e_log "lane $((i + 1)) printed no summary line"
            rc=1
            continue
        }
        read -r a b c d < <(sed -E 's/^e2e: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped(, ([0-9]+) not run)?.*/\1 \2 \3 \5/' <<<"$line")
        p=$((p + a)) f=$((f + b)) s=$((s + c)) n=$((n + ${d:-0}))
    done
    e2e_log "lanes: total $(($(e2e_now_ms) - t_start)) ms"
    for i in "${!lanes[@]}"; do
        grep -E '^e2e\[' "$dir/$i.log" || true
    done
    line="e2e: $p passed, $f failed, $s skipped"
    ((n == 0)) || line+=", $n not run (releases or modes their scripts leave out)"
    echo "$line"
    return "$rc"
}
if [[ $E2E_LANES != none ]]; then
    run_lanes
    exit $?
fi

passed=0
failed=0
skipped=0
notrun=0
declare -A rel_passed=() rel_failed=() rel_skipped=() rel_notrun=()
failures=()
skips=()
times=()
machine=
rootfs=
seq=0

# fresh_machine RELEASE MODE: shut down the current machine (if any), boot
# a new one of RELEASE in cgroup MODE.
fresh_machine() {
    local release=$1 mode=$2
    if [[ -n $machine ]]; then
        e2e_step "shutdown $machine" e2e_shutdown "$machine"
        rm -rf --one-file-system "$rootfs"
    fi
    seq=$((seq + 1))
    machine=rse2e-$release-$mode-$$-$seq
    rootfs=$E2E_WORK_DIR/$machine
    e2e_step "rootfs $machine" e2e_rootfs "$rootfs"
    e2e_step "boot $machine" e2e_boot "$machine" "$rootfs" "$mode"
}

for release in $E2E_RELEASES; do
    export E2E_SUITE=$release
    rel_passed[$release]=0 rel_failed[$release]=0 rel_skipped[$release]=0 rel_notrun[$release]=0
    for mode in $(e2e_modes "$release"); do
        machine=
        fresh=1
        left_out=()
        for t in "${tests[@]}"; do
            label="$(basename "$t") [$release $mode]"
            if ! e2e_runs_on "$t" "$release" || ! e2e_runs_in "$t" "$mode"; then
                notrun=$((notrun + 1))
                rel_notrun[$release]=$((rel_notrun[$release] + 1))
                left_out+=("$(basename "$t")")
                continue
            fi
            if ((fresh)) || grep -q '^# e2e: fresh-machine' "$t"; then
                fresh_machine "$release" "$mode"
            fi
            fresh=0
            e2e_log "==== $label on $machine"
            t0=$(e2e_now_ms)
            rc=0
            E2E_MACHINE=$machine E2E_MODE=$mode \
                timeout --kill-after=10 "$E2E_TEST_TIMEOUT" bash "$t" || rc=$?
            ms=$(($(e2e_now_ms) - t0))
            times+=("$(printf '%8d ms  %s' "$ms" "$label")")
            case $rc in
                0)
                    passed=$((passed + 1))
                    rel_passed[$release]=$((rel_passed[$release] + 1))
                    e2e_log "==== PASS $label ($ms ms)"
                    ;;
                77)
                    skipped=$((skipped + 1))
                    rel_skipped[$release]=$((rel_skipped[$release] + 1))
                    skips+=("$label")
                    e2e_log "==== SKIP $label ($ms ms)"
                    ;;
                *)
                    failed=$((failed + 1))
                    rel_failed[$release]=$((rel_failed[$release] + 1))
                    failures+=("$label")
                    ((rc == 124)) && e2e_log "$label timed out after ${E2E_TEST_TIMEOUT}s"
                    e2e_log "==== FAIL $label (exit $rc, $ms ms)"
                    e2e_debug_dump "$machine"
                    fresh=1
                    ;;
            esac
        done
        if ((${#left_out[@]})); then
            e2e_log "==== NOT RUN on $release $mode (their '# e2e: releases/modes' headers leave it out): ${left_out[*]}"
        fi
        if [[ -n $machine ]]; then
            e2e_step "shutdown $machine" e2e_shutdown "$machine"
            rm -rf --one-file-system "$rootfs"
        fi
    done
done

e2e_log "wall time per test:"
printf '[e2e] %s\n' "${times[@]}" >&2
if [[ -s $E2E_MEASURE_FILE ]]; then
    e2e_log "measurements:"
    sed 's/^/[e2e]   /' "$E2E_MEASURE_FILE" >&2
fi
e2e_log "total $(($(e2e_now_ms) - t_start)) ms"
for f in "${failures[@]}"; do
    e2e_log "failed: $f"
done
for f in "${skips[@]}"; do
    e2e_log "skipped: $f"
done
for release in $E2E_RELEASES; do
    line="e2e[$release]: ${rel_passed[$release]} passed, ${rel_failed[$release]} failed, ${rel_skipped[$release]} skipped"
    ((rel_notrun[$release] == 0)) || line+=", ${rel_notrun[$release]} not run"
    line+=" (modes: $(e2e_modes "$release"))"
    echo "$line"
done
summary="e2e: $passed passed, $failed failed, $skipped skipped"
((notrun == 0)) || summary+=", $notrun not run (releases or modes their scripts leave out)"
echo "$summary"
((failed == 0)) || exit 1
if ((skipped)) && [[ ${E2E_ALLOW_SKIP:-0} != 1 ]]; then
    echo "e2e: skipped tests count as failures (set E2E_ALLOW_SKIP=1 to allow them locally)" >&2
    exit 1
fi
exit 0
