#!/usr/bin/env bash
# Interpreted code through the apt hook (issue 11, "Proof", ci/e2e): the
# daemons run Python, Perl and shell code from packages, and an
# `apt-get upgrade` replaces only .py, .pm and .sh files, so no ELF file any
# of them maps changes; only the interpreted-code signals can find them.
# Packages (pkgs/build-debs.sh): demo-pyhelper (module demopyhelper),
# demo-py (demo-pyd.service imports it), demo-pyother (demo-pyother.service,
# standard library only), demo-plhelper (DemoPl::Helper), demo-pl
# (demo-pld.service uses it), demo-sh (demo-shd.service, /bin/sh loop).
# python3 is not in the rootfs: it comes from Debian's archive through the
# local repo (e2e_archive_install, cached in ci/e2e/.cache/python3-*), and
# is purged again at the end, with everything it pulled in.
# One transaction upgrades demo-pyhelper, demo-plhelper and demo-sh 1.0 ->
# 2.0 (not demo-py, demo-pl or demo-pyother). Checked:
#   - demo-pyd (allowed; imports demopyhelper): restarted (new MainPID),
#     the finish journal names the import as the reason;
#   - demo-pld (allowed; uses DemoPl::Helper): restarted, reason the module;
#   - demo-shd (allowed; its own script upgraded): restarted, reason the
#     script;
#   - demo-pyother (allowed too, so only staleness decides; imports no demo
#     module): same MainPID, not mentioned;
#   - the finish unit exits 0: 3 restarted and verified clean.
# Both cgroup modes: the restart and the unit's processes are found through
# the cgroup tree, which differs between v2 and v1.
# Not on cgroup v1: the interpreted-code signals read /proc files that no
# cgroup mode changes; finding a process's unit in v1 is 20's and 22's.
# e2e: modes v2
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

INTERP_PKGS=(demo-pyhelper demo-py demo-pyother demo-plhelper demo-pl demo-sh)
INTERP_UNITS=(demo-pyd.service demo-pyother.service demo-pld.service demo-shd.service)
RESTARTED=(demo-pyd.service demo-pld.service demo-shd.service)

# interp_reset NAME: stop and purge the interpreted demo packages.
interp_reset() {
    local name=$1 installed
    e2e_in "$name" systemctl stop "${INTERP_UNITS[@]}" 2>/dev/null || true
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    installed=$(e2e_in "$name" dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' \
        "${INTERP_PKGS[@]}" 2>/dev/null | awk '$1 !~ /^u/ && $1 !~ /^.n/ { print $NF }') || true
    if [[ -n $installed ]]; then
        # shellcheck disable=SC2086 # one package name per word
        e2e_in "$name" dpkg --purge $installed >/dev/null
    fi
    e2e_in "$name" systemctl daemon-reload
}

t() {
    local m=$1 u cursor log new
    local -A pid

    e2e_step "reset" e2e_demo_reset "$m"
    e2e_step "reset interpreted demos" interp_reset "$m"
    e2e_step "install python3 from the archive" e2e_archive_install "$m" python3 python3
    e2e_step "install restart-stale" e2e_require_tool "$m"
    e2e_in "$m" rm -f /etc/apt/apt.conf.d/51restart-stale-local
    e2e_wait_apt_finish "$m"
    e2e_publish "$m" v1
    e2e_step "install interpreted demos" e2e_apt "$m" install "${INTERP_PKGS[@]}" >/dev/null
    e2e_in "$m" systemctl start "${INTERP_UNITS[@]}"
    e2e_wait_active "$m" "${INTERP_UNITS[@]}"
    e2e_wait_apt_finish "$m"
    for u in "${INTERP_UNITS[@]}"; do
        e2e_policy "$m" "$u" allow
        pid[$u]=$(e2e_unit_pid "$m" "$u")
    done
    # The daemons really run what they should (the imports succeeded).
    assert_contains "$(e2e_in "$m" cat "/proc/${pid[demo-pyd.service]}/cmdline" | tr '\0' ' ')" \
        "/usr/lib/demo-py/pyd.py" "cmdline of demo-pyd"
    assert_contains "$(e2e_in "$m" cat "/proc/${pid[demo-pld.service]}/cmdline" | tr '\0' ' ')" \
        "/usr/lib/demo-pl/pld.pl" "cmdline of demo-pld"

    # ctime within a second of the start is not trusted: be clearly later.
    sleep 1
    e2e_publish "$m" v2 demo-pyhelper demo-plhelper demo-sh
    cursor=$(e2e_journal_cursor "$m")
    e2e_step "apt-get upgrade" e2e_apt "$m" upgrade
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    assert_eq "demo-pl 1.0 demo-plhelper 2.0 demo-py 1.0 demo-pyhelper 2.0 demo-pyother 1.0 demo-sh 2.0 " \
        "$(e2e_in "$m" dpkg-query -W -f='${Package} ${Version} ' "${INTERP_PKGS[@]}")" "installed versions"
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | e2e_show_log

    for u in "${RESTARTED[@]}"; do
        new=$(e2e_unit_pid "$m" "$u")
        assert_ne "${pid[$u]}" "$new" "MainPID of $u"
        assert_ne 0 "$new" "MainPID of $u"
        assert_line "$log" "restart-stale\\[[0-9]+\\]: ${u//./\\.}: restarted in .*, verified clean\$" "finish journal"
    done
    # The plan names each unit and, under it, the old process and why:
    # for the daemons the import, for the shell loop its own script.
    for u in "${RESTARTED[@]}"; do
        assert_line "$log" "restart-stale\\[[0-9]+\\]: ${u//./\\.} +restart +\\(allowed by admin: /etc/restart-stale/${u//./\\.}\\)\$" "finish journal"
    done
    assert_line "$log" "restart-stale\\[[0-9]+\\]: +pid ${pid[demo-pyd.service]} \\(python3\\): imports demopyhelper: /usr/lib/python3/dist-packages/demopyhelper\\.py \\(in this transaction\\)\$" "finish journal"
    assert_line "$log" "restart-stale\\[[0-9]+\\]: +pid ${pid[demo-pld.service]} \\(perl\\): imports DemoPl::Helper: /usr/share/perl5/DemoPl/Helper\\.pm \\(in this transaction\\)\$" "finish journal"
    assert_line "$log" "restart-stale\\[[0-9]+\\]: +pid ${pid[demo-shd.service]} \\(sh\\): script /usr/lib/demo-sh/shd\\.sh \\(in this transaction\\)\$" "finish journal"

    assert_eq "${pid[demo-pyother.service]}" "$(e2e_unit_pid "$m" demo-pyother.service)" "MainPID of demo-pyother"
    assert_no_line "$log" 'demo-pyother' "finish journal"
    assert_no_line "$log" "pid ${pid[demo-pyother.service]} " "finish journal"

    assert_line "$log" "apt transaction \\(1 hook runs, [^)]*apt-get [^)]* upgrade\\): .*demo-pyhelper:all 1\\.0 → 2\\.0" "finish journal"
    assert_line "$log" 'summary: 3 restarted and verified clean, 0 failed or still stale' "finish journal"
    assert_line "$log" "systemd\\[1\\]: $E2E_FINISH_UNIT: Deactivated successfully" "finish journal"
    assert_no_line "$log" 'Failed with result|status=[1-9]' "finish journal"

    # Leave the shared machine as the other tests expect it.
    for u in "${INTERP_UNITS[@]}"; do
        e2e_policy "$m" "$u" none
    done
    e2e_step "purge interpreted demos" interp_reset "$m"
    e2e_step "purge python3" e2e_archive_purge "$m" python3 python3
    e2e_in "$m" test ! -e /usr/bin/python3 || fail "python3 is still installed after the purge"
}
e2e_test_main t
