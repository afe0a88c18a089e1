#!/usr/bin/env bash
# A real dnf5 transaction, through libdnf5's actions plugin and the shipped
# restart-stale.actions, restarts exactly the allowed, affected unit, once
# and after dnf5 is done; and dnf5 still exits 0, in bounded time, when the
# hook cannot do its work: binary missing, D-Bus stopped, binary hanging.
# The transaction made while D-Bus was stopped is acted on by the next one.
#
# Only sid has dnf5 (5.4 with the actions plugin in libdnf5-2), hence the
# releases line. The subject is the package manager's hook, which does not
# depend on the cgroup mode (sid has v2 only anyway), hence v2.
#
# Debian's dnf5, rpm and createrepo-c come from sid's archive (lib-rpm.sh's
# e2e_rpm_tools with dnf5 in place of dnf 4). restart-stale comes as the rpm
# that packaging/rpm/build-rpm.sh builds in the container from
# $RESTART_STALE_DEB's binary (e2e_rpm_install_tool): the rpm, not the .deb,
# installs /etc/dnf/libdnf5-plugins/actions.d/restart-stale.actions (see
# docs/dnf.md, "dnf 5 on Debian"), so the file dnf5 reads is the packaged one.
# The demo rpms are those of 90-dnf.sh: libdemo1 and demo-allowed go 1.0 →
# 2.0; demo-allowed (allowed, maps libdemo) must restart, demo-denied
# (denied, maps libdemo) and demo-unrelated (allowed, no libdemo) must not.
#
# The failure cases each move libdemo1 once more (downgrade, upgrade,
# downgrade) and check that dnf5 exits 0 and the package really changed.
# dnf5 runs in its own unit with RuntimeMaxSec=$DNF5_BOUND: a dnf5 blocked by
# the hook is killed and the test fails; the time each run took is printed
# as a measurement, never asserted beyond that guard.
# e2e: fresh-machine
# e2e: releases sid
# e2e: modes v2
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lib-rpm.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib-rpm.sh"

# dnf5 instead of dnf 4; the rpm tools as in lib-rpm.sh.
# shellcheck disable=SC2034 # read by e2e_rpm_tools (lib-rpm.sh)
E2E_RPM_TOOLS=(dnf5 rpm createrepo-c)
UNITS=(demo-allowed.service demo-denied.service demo-unrelated.service)
: "${DNF5_BOUND:=60}"
ACTIONS=/etc/dnf/libdnf5-plugins/actions.d/restart-stale.actions
FINISH=restart-stale-dnf.service

# dnf5 NAME TAG ARGS...: dnf5 ARGS in NAME against the demo repo only, in
# its own unit e2e-dnf5-TAG.service (user.slice, as an admin's shell),
# killed after $DNF5_BOUND s; sets $rc, $ms and $dout. With TAG "nodbus"
# straight from nsenter under timeout(1) instead: systemd-run --wait needs
# the D-Bus that case stops.
dnf5() {
    local m=$1 tag=$2 t0 run
    shift 2
    run=(systemd-run --quiet --wait --pipe --collect --slice=user.slice --unit="e2e-dnf5-$tag"
        --property=RuntimeMaxSec="$DNF5_BOUND" --property=TimeoutStopSec=5 --)
    [[ $tag == nodbus ]] && run=(timeout -k 5 "$DNF5_BOUND")
    t0=$(e2e_now_ms)
    rc=0
    dout=$(e2e_in "$m" "${run[@]}" dnf5 -y --releasever=12 --refresh --repo=e2e-demo "$@" </dev/null 2>&1) || rc=$?
    ms=$(($(e2e_now_ms) - t0))
    printf '%s\n' "$dout" | e2e_show_log "dnf5 $tag"
}

# spooled NAME: how many dnf records wait in the spool (pending, or taken
# by a finish that has not ended).
# (The fallback spool on /var need not exist, and find fails then.)
spooled() {
    { e2e_in "$1" find /run/restart-stale/dnf /var/lib/restart-stale/spool/dnf -maxdepth 1 \
        \( -name pending -o -name 'taken.*' \) 2>/dev/null || true; } | wc -l
}

# finish_log NAME CURSOR: sets $log to restart-stale-dnf.service's journal
# since CURSOR (and shows it), $starts to the unit's starts in it and
# $acted to its summary lines of what it acted on (one per finish run).
finish_log() {
    log=$(e2e_journal "$1" "$2" -u restart-stale-dnf.service)
    printf '%s\n' "$log" | e2e_show_log finish
    starts=$(grep -cE 'systemd\[1\]: Starting restart-stale-dnf\.service' <<<"$log" || true)
    acted=$(grep -c 'dnf5 transaction' <<<"$log" || true)
}

# failure_case NAME TAG WHAT VERSION ARGS...: dnf5 ARGS must exit 0 with the
# hook broken as WHAT says, and leave libdemo1 at VERSION. Sets $dlog to
# what dnf5 logged about the actions plugin meanwhile (dnf5.log).
failure_case() {
    local m=$1 tag=$2 what=$3 want=$4 before
    shift 4
    before=$(e2e_in "$m" sh -c 'wc -l </var/log/dnf5.log')
    dnf5 "$m" "$tag" "$@"
    e2e_measure "dnf5 $* with $what: ${ms} ms (exit $rc)"
    ((rc == 0)) || fail "dnf5 $* exited $rc with $what (bound ${DNF5_BOUND} s)"
    assert_eq "$want" "$(e2e_in "$m" rpm -q --qf '%{VERSION}' libdemo1)" "libdemo1 after dnf5 $* with $what"
    dlog=$(e2e_in "$m" tail -n "+$((before + 1))" /var/log/dnf5.log | grep 'Actions plugin' || true)
    printf '%s\n' "$dlog" | e2e_show_log dnf5.log
}

# gate_closed WHAT: $dlog shows that libdnf5 ran none of our lines after
# `dnf5-hook begin` failed (the gate variable stayed unset).
gate_closed() {
    assert_line "$dlog" 'Unknown variable "tmp\.restart_stale_pid"' "dnf5.log with $1"
    assert_no_line "$dlog" 'dnf5-hook (package|pre-transaction|post-transaction)' "dnf5.log with $1"
}

t() {
    local m=$1 log alog n t0 t_end t_restart cursor dlog before starts acted
    local -A pid

    e2e_demo_reset "$m"
    t0=$(e2e_now_ms)
    e2e_step "install dnf5, rpm, createrepo-c" e2e_rpm_tools "$m"
    e2e_measure "installing dnf5, rpm and createrepo-c from $E2E_SUITE: $(($(e2e_now_ms) - t0)) ms"
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    e2e_log "$(e2e_in "$m" dpkg-query -W -f='${Package} ${Version}\n' dnf5 libdnf5-2 rpm | tr '\n' ' ')"
    e2e_in "$m" test -f /etc/dnf/libdnf5-plugins/actions.conf || fail "no actions.conf: the actions plugin is not installed"
    assert_line "$(e2e_in "$m" cat /etc/dnf/libdnf5-plugins/actions.conf)" '^enabled *= *1' "actions.conf"
    e2e_step "build and install the restart-stale rpm" e2e_rpm_install_tool "$m"
    e2e_in "$m" test -f "$ACTIONS" || fail "the rpm did not install $ACTIONS"
    e2e_step "build demo rpms" e2e_rpm_demo_build "$m"

    e2e_rpm_publish "$m" v1
    dnf5 "$m" install install "${E2E_RPM_DEMO[@]}"
    ((rc == 0)) || fail "dnf5 install exited $rc"
    e2e_wait_finish "$m" "$FINISH"
    e2e_start_demo_units "$m" pid "${UNITS[@]}"

    # The upgrade through the hook.
    e2e_rpm_publish "$m" v2 libdemo1 demo-allowed
    cursor=$(e2e_journal_cursor "$m")
    dnf5 "$m" upgrade upgrade
    e2e_measure "dnf5 upgrade with the hook: ${ms} ms"
    ((rc == 0)) || fail "dnf5 upgrade exited $rc"
    assert_contains "$dout" "restart-stale: restart-stale-dnf.service acts once dnf is done" "dnf5's output"
    assert_no_line "$dout" 'Actions plugin' "dnf5's output (no error from the actions plugin)"
    e2e_step "wait for restart-stale-dnf.service" e2e_wait_finish "$m" "$FINISH"
    assert_eq 2.0 "$(e2e_in "$m" rpm -q --qf '%{VERSION}' libdemo1)" "installed libdemo1"

    finish_log "$m" "$cursor"
    assert_eq 1 "$starts" "starts of restart-stale-dnf.service"
    assert_eq 1 "$acted" "dnf5 transactions acted on"
    assert_line "$log" 'dnf5 transaction[^:]*: .*libdemo1\.x86_64 1\.0-1 → 2\.0-1' "finish's summary"
    n=$(grep -c 'demo-allowed\.service: restarting' <<<"$log" || true)
    assert_eq 1 "$n" "restarts of demo-allowed by restart-stale"
    assert_line "$log" 'demo-allowed\.service: restarted in .*, verified clean$' "finish journal"
    assert_line "$log" 'demo-denied\.service +skip +\(denied by admin' "finish journal"
    assert_no_line "$log" 'demo-unrelated' "finish journal"
    assert_no_line "$log" 'Failed with result|status=[1-9]' "finish journal"

    alog=$(e2e_journal "$m" "$cursor" -u demo-allowed.service -u e2e-dnf5-upgrade.service)
    printf '%s\n' "$alog" | e2e_show_log
    n=$(grep -cE 'systemd\[1\]: Started demo-allowed\.service' <<<"$alog" || true)
    assert_eq 1 "$n" "starts of demo-allowed"
    assert_line "$alog" 'using libdemo 2\.0$' "demo-allowed journal (libdemo 2.0)"
    # After the transaction: dnf5's unit ended before demo-allowed stopped.
    t_end=$(grep -E 'e2e-dnf5-upgrade\.service: Deactivated successfully' <<<"$alog" | head -n 1 | cut -d' ' -f1 | tr -d .)
    t_restart=$(grep -E 'Stopping demo-allowed\.service' <<<"$alog" | head -n 1 | cut -d' ' -f1 | tr -d .)
    [[ -n $t_end && -n $t_restart ]] || fail "no end of dnf5's unit or no stop of demo-allowed in the journal"
    ((t_restart > t_end)) || fail "demo-allowed stopped ($t_restart us) before dnf5's unit ended ($t_end us)"
    e2e_log "ok: demo-allowed stopped at $t_restart us, after dnf5's unit ended at $t_end us"

    assert_ne "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed"
    assert_not_contains "$(e2e_maps "$m" "$(e2e_unit_pid "$m" demo-allowed.service)")" "(deleted)" "maps of the new demo-allowed"
    assert_eq "${pid[demo-denied.service]}" "$(e2e_unit_pid "$m" demo-denied.service)" "MainPID of demo-denied (denied)"
    assert_contains "$(e2e_maps "$m" "${pid[demo-denied.service]}")" "libdemo.so.1 (deleted)" "maps of demo-denied"
    assert_eq "${pid[demo-unrelated.service]}" "$(e2e_unit_pid "$m" demo-unrelated.service)" "MainPID of demo-unrelated (unaffected)"

    # (a) The binary is missing (the package removed, the conffile kept).
    e2e_in "$m" mv /usr/bin/restart-stale /usr/bin/restart-stale.away
    failure_case "$m" missing "the binary missing" 1.0 downgrade libdemo1
    # timeout(1) exits 127 when it cannot find the command.
    assert_line "$dlog" 'Exit code: 127$' "dnf5.log with the binary missing"
    gate_closed "the binary missing"
    e2e_in "$m" mv /usr/bin/restart-stale.away /usr/bin/restart-stale
    e2e_wait_finish "$m" "$FINISH"

    # (b) The binary hangs where the actions file calls it.
    e2e_in "$m" mv /usr/bin/restart-stale /usr/bin/restart-stale.away
    e2e_in "$m" sh -c 'printf "#!/bin/sh\nexec sleep infinity\n" >/usr/bin/restart-stale && chmod 755 /usr/bin/restart-stale'
    failure_case "$m" hang "a hanging binary" 2.0 upgrade libdemo1
    e2e_in "$m" mv /usr/bin/restart-stale.away /usr/bin/restart-stale
    # ... and 124 when it had to stop it.
    assert_line "$dlog" 'Exit code: 124$' "dnf5.log with a hanging binary"
    gate_closed "a hanging binary"
    # Issue 16 asks for 30 s; the file's timeout(1) on `begin` is 5 s (+5 s
    # to KILL). Only $DNF5_BOUND is enforced (by systemd), never the time.
    ((ms < 30000)) || e2e_log "NOTE: dnf5 took ${ms} ms with a hanging binary, more than the 30 s aimed for"
    n=$(e2e_in "$m" sh -c 'grep -lx sleep /proc/[0-9]*/comm 2>/dev/null | wc -l')
    e2e_log "stand-in processes left behind after dnf5 returned: $n"

    # (b2) The binary opens the gate, then hangs in every later call: what
    #      it costs is bounded by the actions file's three timeouts (27 s
    #      with -k), nothing per package (touch(1) stages them). Measured,
    #      never asserted beyond $DNF5_BOUND.
    e2e_in "$m" mv /usr/bin/restart-stale /usr/bin/restart-stale.away
    e2e_in "$m" sh -c 'printf "#!/bin/sh\n[ \"\$2\" = begin ] && exec /usr/bin/restart-stale.away \"\$@\"\nexec sleep infinity\n" >/usr/bin/restart-stale && chmod 755 /usr/bin/restart-stale'
    failure_case "$m" hang-late "a binary hanging after begin" 1.0 downgrade libdemo1
    e2e_in "$m" mv /usr/bin/restart-stale.away /usr/bin/restart-stale
    assert_line "$dlog" 'Exit code: 124$' "dnf5.log with a binary hanging after begin"
    ((ms < 30000)) || e2e_log "NOTE: dnf5 took ${ms} ms with a binary hanging after begin, more than the 30 s aimed for"
    # Its staged packages wait for the next transaction, as a dnf that
    # ended without finishing; the upgrade back to 2.0 below in (c) is
    # that next transaction.
    e2e_in "$m" rm -rf /run/restart-stale/dnf
    dnf5 "$m" back upgrade libdemo1
    ((rc == 0)) || fail "dnf5 upgrade after the late hang exited $rc"
    e2e_wait_finish "$m" "$FINISH"

    # (c) D-Bus is stopped: the hook cannot start restart-stale-dnf.service.
    #     Last, and logind is restarted after it: with logind still off
    #     the bus, a later dnf5 run took ~55 s here, two waits of ~25 s (sd-bus's
    #     call timeout; most likely libdnf5's systemd-inhibit plugin asking
    #     logind), none of them in our hook.
    e2e_in "$m" systemctl stop dbus.socket dbus.service
    failure_case "$m" nodbus "D-Bus stopped" 1.0 downgrade libdemo1
    assert_contains "$dout" "dnf5-hook post-transaction: failed to connect to the D-Bus system bus" "dnf5's output with D-Bus stopped"
    e2e_in "$m" systemctl start dbus.socket dbus.service
    e2e_in "$m" systemctl try-restart systemd-logind.service
    # The record of this transaction stays in the spool (checked below).
    e2e_wait_unit_idle "$m" "$FINISH"

    # ... and that transaction is not lost: its record waits in the spool,
    # its staging file is gone (or the next hook would record it again as
    # a dnf that ended without finishing), and the next transaction's
    # finish acts on both.
    assert_eq 1 "$(spooled "$m")" "records waiting after the D-Bus case"
    assert_contains "$(e2e_in "$m" cat /run/restart-stale/dnf/pending)" "package in libdemo1-0:1.0-1.x86_64" "the record of the D-Bus case"
    assert_eq "" "$(e2e_in "$m" find /run/restart-stale/dnf -name 'dnf5.*.staging')" "staging files after the D-Bus case"
    before=$(e2e_unit_pid "$m" demo-allowed.service)
    cursor=$(e2e_journal_cursor "$m")
    dnf5 "$m" next upgrade libdemo1
    ((rc == 0)) || fail "dnf5 upgrade after the D-Bus case exited $rc"
    assert_not_contains "$dout" "ended without finishing" "dnf5's output after the D-Bus case"
    e2e_step "wait for restart-stale-dnf.service and an empty spool" e2e_wait_finish "$m" "$FINISH"
    finish_log "$m" "$cursor"
    assert_eq 1 "$starts" "starts of restart-stale-dnf.service after the D-Bus case"
    # One summary line per finish, from each package's first version to
    # its last: 2.0-1 → 1.0-1 (the D-Bus case) and 1.0-1 → 2.0-1 (this
    # one) show as 2.0-1 → 2.0-1 only if the finish took both records.
    assert_eq 1 "$acted" "finish summaries after the D-Bus case"
    n=$(grep -c 'demo-allowed\.service: restarting' <<<"$log" || true)
    assert_eq 1 "$n" "restarts of demo-allowed for both transactions (D-Bus down, then up)"
    assert_line "$log" 'dnf5 transaction[^:]*: .*libdemo1\.x86_64 2\.0-1 → 2\.0-1' "finish's summary of both transactions"
    assert_no_line "$log" 'warning' "finish journal after the D-Bus case"
    assert_ne "$before" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed after the D-Bus case"
    assert_not_contains "$(e2e_maps "$m" "$(e2e_unit_pid "$m" demo-allowed.service)")" "(deleted)" "maps of demo-allowed after the D-Bus case"

    # Leave no rpm behind.
    e2e_in "$m" systemctl stop "${UNITS[@]}"
    e2e_in "$m" rpm -e "${E2E_RPM_DEMO[@]}" restart-stale
}
e2e_test_main t
