# shellcheck shell=bash
# Releases and cgroup modes, the scripts' headers that choose them, and
# e2e_test_main, the body of every test script. Sourced by ../lib.sh.

# The Debian releases the bed boots, and the cgroup modes each boots in.
# bookworm (systemd 252) in v2 and legacy v1. trixie's systemd 257 still
# boots in v1 inside nspawn (it marks itself tainted "cgroupsv1"), but
# upstream has deprecated v1, trixie's default is v2, and a second trixie
# pass would cost ~10 minutes of CI: v1 stays covered on bookworm, trixie
# and sid run v2. E2E_MODES_RELEASE (e.g. E2E_MODES_trixie="v2 v1")
# replaces a release's modes for a local run. E2E_RELEASES (default: all
# three) and E2E_MODES (default: each release's own) narrow what a run
# boots; a mode a release does not list is never booted for it.
E2E_ALL_RELEASES=(bookworm trixie sid)
# A script without a "# e2e: releases" header runs on these. sid only for
# the scripts that name it: the archive changes daily under it.
E2E_DEFAULT_RELEASES="bookworm trixie"

# e2e_release_modes RELEASE: the cgroup modes RELEASE is booted in.
e2e_release_modes() {
    local override=E2E_MODES_$1
    if [[ $1 =~ ^[a-z]+$ && -n ${!override:-} ]]; then
        echo "${!override}"
        return
    fi
    case $1 in
        bookworm) echo "v2 v1" ;;
        trixie | sid) echo v2 ;;
        *) fail "unknown release '$1' (known: ${E2E_ALL_RELEASES[*]})" ;;
    esac
}

# e2e_modes RELEASE: the modes to boot RELEASE in for this run: its own
# (e2e_release_modes), narrowed by E2E_MODES if set.
e2e_modes() {
    local m modes=()
    for m in $(e2e_release_modes "$1"); do
        [[ -z ${E2E_MODES:-} || " $E2E_MODES " == *" $m "* ]] && modes+=("$m")
    done
    echo "${modes[*]}"
}

# e2e_check_releases: fail on an unknown release in E2E_RELEASES. Call it
# plainly (not in $(...) or `if`), before iterating over E2E_RELEASES.
e2e_check_releases() {
    local r
    for r in $E2E_RELEASES; do
        e2e_release_modes "$r" >/dev/null
    done
}

# _e2e_header SCRIPT KEY: the words of SCRIPT's first "# e2e: KEY ..." line.
_e2e_header() {
    sed -n "s/^# e2e: $2 //p" "$1" | head -n 1
}

# e2e_script_releases SCRIPT: the releases SCRIPT runs on: the words of its
# header line "# e2e: releases bookworm trixie", else E2E_DEFAULT_RELEASES.
# An unknown codename there fails (a typo must not silently drop a test).
e2e_script_releases() {
    local rels r
    rels=$(_e2e_header "$1" releases)
    for r in $rels; do
        [[ " ${E2E_ALL_RELEASES[*]} " == *" $r "* ]] ||
            fail "$(basename "$1"): unknown release '$r' in '# e2e: releases' (known: ${E2E_ALL_RELEASES[*]})"
    done
    echo "${rels:-$E2E_DEFAULT_RELEASES}"
}

# e2e_check_headers SCRIPT: fail on an unknown release or mode in SCRIPT's
# headers. Call it plainly: the other helpers run inside $(...) or `if`,
# where a failure cannot end the script.
e2e_check_headers() {
    e2e_script_releases "$1" >/dev/null
    e2e_runs_in "$1" v2 || true
}

# e2e_runs_on SCRIPT RELEASE: true if SCRIPT runs on RELEASE.
e2e_runs_on() {
    local rels
    rels=$(e2e_script_releases "$1")
    [[ " $rels " == *" $2 "* ]]
}

# e2e_runs_in SCRIPT MODE: true if SCRIPT runs in cgroup MODE. A script
# that gains nothing from one mode names the modes it runs in with a header
# line "# e2e: modes v2" (words after "modes"); without one it runs in all.
# Both headers combine: a script runs on each of its releases in those of
# the release's modes that it names. run.sh reports a script left out
# either way as "not run", not as a skip.
e2e_runs_in() {
    local script=$1 mode=$2 modes m
    modes=$(_e2e_header "$script" modes)
    for m in $modes; do
        [[ $m == v2 || $m == v1 ]] ||
            fail "$(basename "$script"): unknown mode '$m' in '# e2e: modes' (v2 or v1)"
    done
    [[ -z $modes || " $modes " == *" $mode "* ]]
}

# e2e_test_main FUNC: the body of every test script. FUNC is called with
# the machine name. Under run.sh (E2E_MACHINE set) it uses the shared,
# already booted machine, once. Standalone it boots its own machine for each
# release in E2E_RELEASES that the script runs on and each of that
# release's modes (e2e_modes), so every test can be run by hand.
e2e_test_main() {
    local fn=$1 release mode name dir t0 ran=0
    if [[ -n ${E2E_MACHINE:-} ]]; then
        e2e_require_root
        e2e_build_debs
        "$fn" "$E2E_MACHINE"
        return
    fi
    e2e_init
    e2e_host_deps
    t0=$(e2e_now_ms)
    e2e_check_releases
    e2e_check_headers "$0"
    e2e_step "build demo debs" e2e_build_debs
    for release in $E2E_RELEASES; do
        if ! e2e_runs_on "$0" "$release"; then
            e2e_log "not run on $release: $(basename "$0") runs on '$(e2e_script_releases "$0")'"
            continue
        fi
        export E2E_SUITE=$release
        for mode in $(e2e_modes "$release"); do
            if ! e2e_runs_in "$0" "$mode"; then
                e2e_log "not run in $mode: $(basename "$0") says '# e2e: modes $(_e2e_header "$0" modes)'"
                continue
            fi
            name=rse2e-$release-$mode-$$
            dir=$E2E_WORK_DIR/$name
            export E2E_MODE=$mode
            e2e_step "rootfs ($release $mode)" e2e_rootfs "$dir"
            e2e_step "boot ($release $mode)" e2e_boot "$name" "$dir" "$mode"
            e2e_step "test $(basename "$0") ($release $mode)" "$fn" "$name"
            e2e_step "shutdown ($release $mode)" e2e_shutdown "$name"
            rm -rf --one-file-system "$dir"
            ran=$((ran + 1))
        done
    done
    e2e_log "total $(($(e2e_now_ms) - t0)) ms"
    if ((ran == 0)); then
        e2e_log "SKIP: $(basename "$0") runs in none of the releases and modes asked for (E2E_RELEASES='$E2E_RELEASES', E2E_MODES='${E2E_MODES:-}')"
        exit 77
    fi
}
