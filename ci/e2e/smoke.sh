#!/usr/bin/env bash
# Smoke test of the e2e bed itself; restart-stale is not involved.
#
# Installs the v1 demo packages, starts every demo unit, upgrades libdemo1 to
# 2.0 with apt-get as an admin would, and checks that the running daemons
# now map the deleted old library, which is the situation restart-stale
# exists for. Also records the cgroup facts the tool relies on, and that
# five 1 s units restart in parallel in about 1 s.
#
# Standalone (as root): boots its own container for cgroup v2 and for
# legacy v1. Under run.sh: uses the shared container named in E2E_MACHINE.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

smoke() {
    local m=$1 u host maps cg t0 ms
    local -A pid

    # A shared container may hold a previous test's leftovers.
    e2e_step "reset demo packages" e2e_demo_reset "$m"
    e2e_step "publish v1, install, start units" e2e_demo_install "$m"
    for u in "${E2E_DEMO_UNITS[@]}"; do
        pid[$u]=$(e2e_unit_pid "$m" "$u")
        assert_ne 0 "${pid[$u]}" "MainPID of $u"
    done
    maps=$(e2e_maps "$m" "${pid[demo-allowed.service]}")
    assert_contains "$maps" "libdemo.so.1" "maps of demo-allowed before upgrade"
    assert_not_contains "$maps" "(deleted)" "maps of demo-allowed before upgrade"

    # Where the unit shows up in /proc/PID/cgroup depends on the mode: the
    # unified line "0::" in v2, the "name=systemd" line in legacy v1.
    cg=$(e2e_in "$m" cat "/proc/${pid[demo-allowed.service]}/cgroup")
    e2e_log "/proc/PID/cgroup of demo-allowed inside ($E2E_MODE):"
    printf '%s\n' "$cg" | e2e_show_log
    e2e_log "ls /sys/fs/cgroup inside ($E2E_MODE): $(e2e_in "$m" ls /sys/fs/cgroup | tr '\n' ' ')"
    case ${E2E_MODE:-} in
        v2)
            assert_eq "0::/system.slice/demo-allowed.service" "$(grep '^0::' <<<"$cg")" "unified line (v2)"
            e2e_log "ls /sys/fs/cgroup/system.slice inside: $(e2e_in "$m" ls /sys/fs/cgroup/system.slice | tr '\n' ' ')"
            ;;
        v1)
            assert_eq "0::/" "$(grep '^0::' <<<"$cg")" "unified line (v1)"
            assert_contains "$cg" "name=systemd:/system.slice/demo-allowed.service" "cgroup (v1)"
            e2e_log "ls /sys/fs/cgroup/systemd/system.slice inside: $(e2e_in "$m" ls /sys/fs/cgroup/systemd/system.slice | tr '\n' ' ')"
            ;;
    esac

    e2e_step "publish v2 (libdemo1 only)" e2e_publish "$m" v2
    e2e_step "apt-get upgrade" e2e_apt "$m" upgrade
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    assert_eq 2.0 "$(e2e_in "$m" dpkg-query -W -f='${Version}' libdemo1)" "installed libdemo1"

    # No maintainer scripts, so nothing may have been restarted.
    for u in "${E2E_DEMO_UNITS[@]}"; do
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u after upgrade"
    done

    maps=$(e2e_maps "$m" "${pid[demo-allowed.service]}")
    assert_contains "$maps" "/usr/lib/x86_64-linux-gnu/libdemo.so.1 (deleted)" "maps of demo-allowed"
    # The same seen from the host, through the host's PID.
    host=$(e2e_host_pid "$m" "${pid[demo-allowed.service]}")
    e2e_log "demo-allowed: PID ${pid[demo-allowed.service]} inside is PID $host on the host"
    assert_contains "$(cat "/proc/$host/maps")" "libdemo.so.1 (deleted)" "host view of demo-allowed maps"
    maps=$(e2e_maps "$m" "${pid[demo-slow3.service]}")
    assert_contains "$maps" "libdemo.so.1 (deleted)" "maps of demo-slow3"
    maps=$(e2e_maps "$m" "${pid[demo-otherdel.service]}")
    assert_contains "$maps" "/var/lib/demo-otherdel/copy.so (deleted)" "maps of demo-otherdel"
    assert_not_contains "$maps" "libdemo" "maps of demo-otherdel"
    maps=$(e2e_maps "$m" "${pid[demo-unrelated.service]}")
    assert_not_contains "$maps" "(deleted)" "maps of demo-unrelated"

    # Five units with a 1 s ExecStartPre, restarted by one systemctl call
    # (jobs run in parallel): about 1 s, not 5.
    t0=$(e2e_now_ms)
    e2e_in "$m" systemctl restart demo-slow1 demo-slow2 demo-slow3 demo-slow4 demo-slow5
    ms=$(($(e2e_now_ms) - t0))
    e2e_log "parallel restart of 5 slow units took $ms ms"
    ((ms < 3000)) || fail "parallel restart of 5 slow units took $ms ms"
    assert_ne "${pid[demo-slow3.service]}" "$(e2e_unit_pid "$m" demo-slow3.service)" "MainPID of restarted demo-slow3"
    assert_not_contains "$(e2e_maps "$m" "$(e2e_unit_pid "$m" demo-slow3.service)")" "(deleted)" "maps of restarted demo-slow3"
}

e2e_test_main smoke
