#!/usr/bin/env bash
# restart-stale as clr-service-restart after a simulated `swupd update`:
# only what the manifests say changed counts.
#
# The container plays Clear Linux at version 100: VERSION_ID in
# /usr/lib/os-release, the os-core bundle tracked in
# /usr/share/clear/bundles/, swupd's manifest cache. A first run with no
# arguments (what swupd runs after every update) records version 100. The
# "update" to 110 then replaces files by rename, as swupd does: libdemo.so.1
# (changed in 110's manifest) and /usr/bin/demo-unrelated (on disk only; the
# manifests say it last changed in 90, so the update did not change it).
# Policy through clr-service-restart's own commands: demo-allowed and
# demo-unrelated allowed, demo-denied disallowed. The run after the update
# must restart demo-allowed only, and record 110.
# e2e: fresh-machine
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

URL=https___cdn.download.clearlinux.org_update
HASH=0000000000000000000000000000000000000000000000000000000000000000
UNITS=(demo-allowed.service demo-denied.service demo-unrelated.service)

# manifest FILE VERSION "flags last_change path"...: a swupd manifest.
manifest() {
    local f=$1 v=$2 l flags change path
    shift 2
    mkdir -p "$(dirname "$f")"
    {
        printf 'MANIFEST\t30\nversion:\t%s\nprevious:\t%s\nfilecount:\t%s\n\n' "$v" $((v - 10)) $#
        for l in "$@"; do
            read -r flags change path <<<"$l"
            printf '%s\t%s\t%s\t%s\n' "$flags" "$HASH" "$change" "$path"
        done
    } >"$f"
}

os_version() {
    printf 'NAME="Clear Linux OS"\nID=clear-linux-os\nVERSION_ID=%s\n' "$2" >"$1/usr/lib/os-release"
}

# swupd_replace NAME PATH NEWFILE: stage NEWFILE next to PATH and rename it
# over PATH, as swupd does.
swupd_replace() {
    local name=$1 path=$2 new=$3 rootfs
    rootfs=$(_e2e_state "$name" rootfs)
    cp "$new" "$rootfs$(dirname "$path")/.update.$(basename "$path")"
    e2e_in "$name" mv -f "$(dirname "$path")/.update.$(basename "$path")" "$path"
}

t() {
    local m=$1 rootfs u out v2 lib state
    local -A pid

    e2e_demo_reset "$m"
    e2e_require_tool "$m"
    # What the rpm installs (hooks/swupd/usr/bin/clr-service-restart).
    e2e_in "$m" ln -sfn restart-stale /usr/bin/clr-service-restart
    e2e_demo_install "$m"
    # That install was an apt transaction, and its finish acts 2 s later on
    # the packages' current file lists: let it act before the "update"
    # replaces /usr/bin/demo-unrelated, or it restarts demo-unrelated.
    e2e_wait_apt_finish "$m"
    rootfs=$(_e2e_state "$m" rootfs)
    lib=/usr/lib/$(gcc -print-multiarch)/libdemo.so.1

    e2e_run "$m" clr-service-restart allow demo-allowed demo-unrelated.service >/dev/null
    e2e_run "$m" clr-service-restart disallow demo-denied >/dev/null
    assert_eq /dev/null "$(e2e_in "$m" readlink /etc/clr-service-restart/demo-denied.service)" "disallow link"

    # Clear Linux at version 100.
    rm -f "$rootfs/usr/lib/os-release"
    os_version "$rootfs" 100
    mkdir -p "$rootfs/usr/share/clear/bundles"
    : >"$rootfs/usr/share/clear/bundles/os-core"
    manifest "$rootfs/var/lib/swupd/cache/$URL/manifest/100/Manifest.os-core" 100 \
        "F... 100 $lib" "F... 90 /usr/bin/demo-allowed" "F... 90 /usr/bin/demo-denied" \
        "F... 90 /usr/bin/demo-unrelated"
    e2e_step "clr-service-restart at 100" e2e_run "$m" clr-service-restart
    assert_eq 100 "$(cat "$rootfs/var/lib/restart-stale/swupd-version")" "recorded version"
    for u in "${UNITS[@]}"; do
        pid[$u]=$(e2e_unit_pid "$m" "$u")
    done

    # The update to 110.
    v2=$(mktemp -d "$E2E_WORK_DIR/swupd.XXXXXX")
    E2E_OWNED_DIRS+=("$v2")
    dpkg-deb -x "$E2E_DEBS_DIR"/2.0/libdemo1_2.0_*.deb "$v2"
    dpkg-deb -x "$E2E_DEBS_DIR"/2.0/demo-unrelated_2.0_*.deb "$v2"
    manifest "$rootfs/var/lib/swupd/cache/$URL/manifest/110/Manifest.MoM" 110 "M... 110 os-core"
    manifest "$rootfs/var/lib/swupd/cache/$URL/manifest/110/Manifest.os-core" 110 \
        "F... 110 $lib" "F... 90 /usr/bin/demo-allowed" "F... 90 /usr/bin/demo-denied" \
        "F... 90 /usr/bin/demo-unrelated" "F... 110 /usr/bin/new-tool"
    swupd_replace "$m" "$lib" "$v2$lib"
    swupd_replace "$m" /usr/bin/demo-unrelated "$v2/usr/bin/demo-unrelated"
    os_version "$rootfs" 110
    assert_contains "$(e2e_maps "$m" "${pid[demo-allowed.service]}")" "libdemo.so.1 (deleted)" "maps of demo-allowed"
    assert_contains "$(e2e_in "$m" readlink "/proc/${pid[demo-unrelated.service]}/exe")" "(deleted)" "exe of demo-unrelated"

    # What swupd runs after the update.
    out=$(e2e_step "clr-service-restart after the update" e2e_run "$m" clr-service-restart 2>&1)
    printf '%s\n' "$out" | e2e_show_log
    assert_contains "$out" "swupd update 100 → 110: 2 changed files" "clr-service-restart's log"
    assert_ne "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed"
    assert_not_contains "$(e2e_maps "$m" "$(e2e_unit_pid "$m" demo-allowed.service)")" "(deleted)" "maps of the new demo-allowed"
    assert_eq "${pid[demo-denied.service]}" "$(e2e_unit_pid "$m" demo-denied.service)" "MainPID of demo-denied (disallowed)"
    assert_eq "${pid[demo-unrelated.service]}" "$(e2e_unit_pid "$m" demo-unrelated.service)" "MainPID of demo-unrelated (not in the update)"
    state=$(cat "$rootfs/var/lib/restart-stale/swupd-version")
    assert_eq 110 "$state" "recorded version"

    # clr-service-restart -a -n: nothing recorded since 110, so every stale
    # mapping counts; exit 0 as the original.
    out=$(e2e_run "$m" clr-service-restart -a -n 2>&1) || fail "clr-service-restart -a -n failed: $out"
    assert_contains "$out" "every stale file counts" "-a -n log"
    assert_contains "$out" "demo-denied.service" "-a -n report"
    assert_contains "$out" "demo-unrelated.service" "-a -n report"
}
e2e_test_main t
