#!/usr/bin/env bash
# A real dnf 4 transaction restarts exactly the allowed, affected unit, once
# dnf is done; a plugin that cannot find the binary does not fail dnf.
#
# Debian's dnf, rpm and createrepo-c are installed in the container (see
# lib-rpm.sh); restart-stale comes as the rpm that packaging/rpm/build-rpm.sh
# builds there from $RESTART_STALE_DEB's binary, so its dnf 4 plugin and
# configuration are the packaged ones. The demo daemons are rpms carrying
# the demo .debs' payloads. libdemo1 and demo-allowed go 1.0 → 2.0 with
# `dnf upgrade`: demo-allowed (allowed, maps libdemo) must restart;
# demo-denied (denied, maps libdemo) and demo-unrelated (allowed, does not
# map libdemo) must not.
# Not on cgroup v1: dnf's plugin and the finish step are the subject; the
# restart itself is proven in v1 by 10 and 20.
# e2e: modes v2
# e2e: fresh-machine
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lib-rpm.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib-rpm.sh"

UNITS=(demo-allowed.service demo-denied.service demo-unrelated.service)

t() {
    local m=$1 out journal
    local -A pid

    e2e_demo_reset "$m"
    e2e_step "install dnf, rpm, createrepo-c" e2e_rpm_tools "$m"
    e2e_step "build and install the restart-stale rpm" e2e_rpm_install_tool "$m"
    out=$(e2e_in "$m" rpm -ql restart-stale)
    for f in /usr/bin/restart-stale /usr/bin/clr-service-restart \
        /usr/lib/python3/dist-packages/dnf-plugins/restart_stale.py \
        /etc/dnf/plugins/restart-stale.conf /etc/dnf/libdnf5-plugins/actions.d/restart-stale.actions \
        /usr/share/man/man1/restart-stale.1 /usr/share/bash-completion/completions/restart-stale; do
        grep -qx "$f" <<<"$out" || fail "the rpm lacks $f: $out"
    done
    # Debian's rpm names doc directories NAME-VERSION, Fedora's NAME.
    grep -qE '^/usr/share/doc/restart-stale(-[0-9.]+)?/dnf.md$' <<<"$out" || fail "the rpm lacks docs/dnf.md: $out"
    assert_not_contains "$out" "/.build-id" "the rpm's file list"
    e2e_log "ok: the rpm installs the binary, the clr-service-restart link, the dnf 4 plugin and conf, the dnf 5 actions, man page, completions and docs"
    assert_eq restart-stale "$(e2e_in "$m" readlink /usr/bin/clr-service-restart)" "clr-service-restart link"
    # The cargo-rpm-macros variant of the spec parses too (it is built on Fedora).
    assert_eq restart-stale "$(e2e_in "$m" rpmspec -q --qf '%{NAME}\n' /srv/tool/src/packaging/rpm/restart-stale.spec 2>/dev/null)" "rpmspec -q of the spec"
    e2e_step "build demo rpms" e2e_rpm_demo_build "$m"

    e2e_rpm_publish "$m" v1
    e2e_step "dnf install (1.0)" e2e_dnf "$m" install "${E2E_RPM_DEMO[@]}" >/dev/null
    e2e_wait_finish "$m" restart-stale-dnf.service
    e2e_start_demo_units "$m" pid "${UNITS[@]}"

    e2e_rpm_publish "$m" v2 libdemo1 demo-allowed
    out=$(e2e_step "dnf upgrade (2.0)" e2e_dnf "$m" upgrade 2>&1)
    printf '%s\n' "$out" | e2e_show_log dnf
    assert_contains "$out" "restart-stale-dnf.service acts once dnf is done" "dnf's output"
    e2e_step "wait for restart-stale-dnf.service" e2e_wait_finish "$m" restart-stale-dnf.service
    assert_eq 2.0 "$(e2e_in "$m" rpm -q --qf '%{VERSION}' libdemo1)" "installed libdemo1"

    journal=$(e2e_in "$m" journalctl --no-pager -o cat -u restart-stale-dnf.service)
    printf '%s\n' "$journal" | e2e_show_log finish
    assert_contains "$journal" "libdemo1.x86_64 1.0-1 → 2.0-1" "finish's summary"
    assert_ne "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed"
    assert_not_contains "$(e2e_maps "$m" "$(e2e_unit_pid "$m" demo-allowed.service)")" "(deleted)" "maps of the new demo-allowed"
    assert_eq "${pid[demo-denied.service]}" "$(e2e_unit_pid "$m" demo-denied.service)" "MainPID of demo-denied (denied)"
    assert_contains "$(e2e_maps "$m" "${pid[demo-denied.service]}")" "libdemo.so.1 (deleted)" "maps of demo-denied"
    assert_eq "${pid[demo-unrelated.service]}" "$(e2e_unit_pid "$m" demo-unrelated.service)" "MainPID of demo-unrelated (unaffected)"

    # The plugin cannot run the binary: dnf must still succeed.
    pid[demo-allowed.service]=$(e2e_unit_pid "$m" demo-allowed.service)
    e2e_in "$m" mv /usr/bin/restart-stale /usr/bin/restart-stale.away
    out=$(e2e_step "dnf downgrade without the binary" e2e_dnf "$m" downgrade libdemo1 2>&1) ||
        fail "dnf failed when the plugin could not run restart-stale: $out"
    e2e_in "$m" mv /usr/bin/restart-stale.away /usr/bin/restart-stale
    assert_contains "$out" "restart-stale: /usr/bin/restart-stale is missing" "dnf's output"
    assert_eq 1.0 "$(e2e_in "$m" rpm -q --qf '%{VERSION}' libdemo1)" "libdemo1 after the downgrade"
    assert_eq "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed (nothing ran)"

    # Replay (issue 6): the plugin could not run for that downgrade, so
    # demo-allowed maps the replaced libdemo 2.0. Replaying dnf's last
    # transaction from its history database does what the plugin would have.
    out=$(e2e_step "replay --dnf-transaction last" e2e_run "$m" restart-stale replay --dnf-transaction last 2>&1) ||
        fail "replay --dnf-transaction last failed: $out"
    printf '%s\n' "$out" | e2e_show_log replay
    assert_ne "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed after the replay"
    assert_not_contains "$(e2e_maps "$m" "$(e2e_unit_pid "$m" demo-allowed.service)")" "(deleted)" "maps of demo-allowed after the replay"
    assert_eq "${pid[demo-denied.service]}" "$(e2e_unit_pid "$m" demo-denied.service)" "MainPID of demo-denied after the replay"
    assert_eq "${pid[demo-unrelated.service]}" "$(e2e_unit_pid "$m" demo-unrelated.service)" "MainPID of demo-unrelated after the replay"
    assert_line "$out" 'demo-denied\.service +skip +\(denied by admin' "replay output"

    # Leave no rpm behind for a later test.
    e2e_in "$m" systemctl stop "${UNITS[@]}"
    e2e_in "$m" rpm -e "${E2E_RPM_DEMO[@]}" restart-stale
}
e2e_test_main t
