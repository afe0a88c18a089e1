#!/usr/bin/env bash
# A real pacman transaction runs restart-stale's packaged alpm hook, which
# hands the targets over; the allowed, affected unit is restarted exactly
# once, after pacman ended; a hook that cannot run its binary, or cannot
# reach D-Bus, does not fail pacman.
#
# Debian's pacman-package-manager and makepkg are installed in the
# container (lib-pacman.sh); restart-stale comes as $RESTART_STALE_DEB,
# so the hook is the one the .deb installs in /usr/share/libalpm/hooks/.
# The demo packages are built with makepkg from pkgs/PKGBUILD.demo (the
# demo .debs' payloads) into a file:// sync repo made with repo-add.
#   - `pacman -Syyu` takes libdemo1 1.0 → 2.0: demo-allowed (allowed, maps
#     libdemo) must restart once; demo-denied (denied, maps libdemo) and
#     demo-unrelated (allowed, does not map libdemo) must not. An admin's
#     hook in /etc/pacman.d/hooks/ that runs after ours keeps pacman busy
#     for 2 s: the restart must come after it.
#   - /usr/bin/restart-stale moved away: `pacman -U` of libdemo1 1.0 exits
#     0 and nothing is restarted.
#   - dbus-daemon stopped (SIGSTOP): `pacman -U` of libdemo1 2.0 exits 0;
#     the hook says it gave up, after recording the transaction; the
#     finish of the next transaction (the clean-up removal) takes it.
# Every pacman run is killed after $E2E_PACMAN_BOUND s (a hook blocking
# pacman fails the test); its wall time is a measurement.
#
# Nothing here depends on the cgroup mode (the restart step is the one
# 10-restart.sh proves in both), so v1 adds only a slow second run.
# e2e: modes v2
# e2e: releases bookworm trixie
# e2e: fresh-machine
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lib-pacman.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib-pacman.sh"

HOOK=/usr/share/libalpm/hooks/restart-stale.hook
FINISH=restart-stale-pacman.service
LATE_HOOK=/etc/pacman.d/hooks/zz-e2e-late.hook
UNITS=(demo-allowed.service demo-denied.service demo-unrelated.service)

# first_ts LOG ERE: the time (microseconds) of LOG's first line matching
# ERE; LOG is in journalctl's short-unix format.
first_ts() {
    local line
    line=$(grep -m 1 -E -- "$2" <<<"$1") || fail "no line matches /$2/"
    awk '{ split($1, t, "."); printf "%d%06d\n", t[1], t[2] }' <<<"$line"
}

# timed_pacman NAME WHAT ARGS...: e2e_pacman ARGS; sets $out (its output)
# and logs its wall time as a measurement. Fails if pacman fails.
timed_pacman() {
    local m=$1 what=$2 t0 rc=0
    shift 2
    t0=$(e2e_now_ms)
    out=$(e2e_pacman "$m" "$@" 2>&1) || rc=$?
    printf '%s\n' "$out" | e2e_show_log pacman
    ((rc == 0)) || fail "pacman $* ($what) exited $rc"
    e2e_measure "pacman $what: $(($(e2e_now_ms) - t0)) ms"
}

t() {
    local m=$1 out log alog n cursor t_restart t_late version old new t0 ms rc
    local -A pid

    e2e_demo_reset "$m"
    e2e_step "install pacman and makepkg" e2e_pacman_tools "$m"
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    version=$(e2e_in "$m" dpkg-query -W -f='${Version}' pacman-package-manager)
    e2e_log "pacman-package-manager $version on $E2E_SUITE"
    e2e_step "install restart-stale" e2e_require_tool "$m"
    assert_line "$(e2e_in "$m" dpkg -L restart-stale)" "^${HOOK//./\\.}\$" "dpkg -L restart-stale"
    assert_line "$(e2e_in "$m" cat "$HOOK")" '^Exec = /usr/bin/restart-stale pacman-hook$' "$HOOK"
    e2e_step "build demo packages with makepkg" e2e_pacman_demo_build "$m"
    e2e_log "built: $(cd "$(_e2e_state "$m" rootfs)/srv/pacpkgs" && echo */*.pkg.tar.zst)"

    e2e_pacman_publish "$m" v1
    timed_pacman "$m" "-Syy (install 1.0)" -Syy "${E2E_PACMAN_DEMO[@]}"
    assert_contains "$out" "Noting services that run replaced code (restart-stale)" "pacman's output"
    e2e_wait_pacman_finish "$m"
    e2e_start_demo_units "$m" pid "${UNITS[@]}"

    # An admin's hook that pacman runs after ours (hooks run in file name
    # order) and that keeps pacman busy for 2 s: a restart before it ended
    # would be a restart during the transaction.
    e2e_in "$m" mkdir -p "$(dirname "$LATE_HOOK")"
    e2e_in "$m" tee "$LATE_HOOK" >/dev/null <<'HOOK'
[Trigger]
Type = Path
Operation = Install
Operation = Upgrade
Operation = Remove
Target = usr/*

[Action]
Description = e2e: a later hook that keeps pacman busy for 2 s
When = PostTransaction
Exec = /bin/sh -c 'sleep 2; date +%s%6N >/run/e2e-late-hook.end'
HOOK
    e2e_pacman_publish "$m" v2 libdemo1
    cursor=$(e2e_journal_cursor "$m")
    # -yy: the repo's database was rewritten in place, maybe within the
    # second of the one pacman has (it compares modification times).
    timed_pacman "$m" "-Syyu (libdemo1 1.0 → 2.0)" -Syyu
    assert_contains "$out" "Running post-transaction hooks" "pacman's output"
    assert_contains "$out" "Noting services that run replaced code (restart-stale)" "pacman's output"
    assert_contains "$out" "e2e: a later hook" "pacman's output"
    e2e_step "wait for $FINISH" e2e_wait_pacman_finish "$m"
    assert_line "$(e2e_in "$m" pacman -Q libdemo1)" '^libdemo1 2\.0-1$' "pacman -Q libdemo1"

    # Everything restart-stale and PID 1 logged about it since the upgrade
    # began, from the whole journal: in some runs `journalctl -u` missed
    # one of the unit's lines (once "Starting", once the first line of
    # restart-stale), though plain journalctl had it: journalctl 252's
    # --after-cursor bug, which e2e_journal_cursor now avoids.
    log=$(e2e_journal "$m" "$cursor" | grep -E "restart-stale\[[0-9]+\]: |systemd\[1\]: .*$FINISH" || true)
    printf '%s\n' "$log" | e2e_show_log finish
    n=$(grep -cE "systemd\\[1\\]: $FINISH: Deactivated successfully" <<<"$log" || true)
    assert_eq 1 "$n" "runs of $FINISH"
    n=$(grep -cE 'restart-stale\[[0-9]+\]: pacman transaction' <<<"$log" || true)
    assert_eq 1 "$n" "transactions acted on"
    # The targets pacman passed: the one file of libdemo1 (directories are
    # left out).
    assert_line "$log" 'restart-stale\[[0-9]+\]: pacman transaction; 1 changed files$' "finish journal"
    assert_line "$log" 'pid [0-9]+ \(demo-allowed\): /usr/lib/[^ ]*/libdemo\.so\.1 \[replaced\]$' "finish journal"
    # The later hook kept pacman running: finish waited for it.
    assert_line "$log" 'waiting until the package manager \(pid [0-9]+\) has exited$' "finish journal"
    n=$(grep -c 'demo-allowed\.service: restarting' <<<"$log" || true)
    assert_eq 1 "$n" "restarts of demo-allowed by restart-stale"
    assert_line "$log" 'restart-stale\[[0-9]+\]: demo-allowed\.service: restarted in .*, verified clean$' "finish journal"
    assert_line "$log" 'demo-denied\.service +skip +\(denied by admin: /etc/restart-stale/demo-denied\.service\)' "finish journal"
    assert_no_line "$log" 'demo-unrelated\.service' "finish journal"
    assert_line "$log" 'summary: 1 restarted and verified clean, 0 failed or still stale' "finish journal"

    alog=$(e2e_journal "$m" "$cursor" | grep -E 'systemd\[1\]: .*demo-allowed\.service|demo-allowed\[[0-9]+\]: ' || true)
    n=$(grep -cE 'systemd\[1\]: Started demo-allowed\.service' <<<"$alog" || true)
    assert_eq 1 "$n" "starts of demo-allowed"
    assert_line "$alog" 'demo-allowed\[[0-9]+\]: .*using libdemo 2\.0$' "demo-allowed journal (libdemo 2.0)"
    assert_ne "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed"
    assert_not_contains "$(e2e_maps "$m" "$(e2e_unit_pid "$m" demo-allowed.service)")" "(deleted)" "maps of the new demo-allowed"
    assert_eq "${pid[demo-denied.service]}" "$(e2e_unit_pid "$m" demo-denied.service)" "MainPID of demo-denied (denied)"
    assert_contains "$(e2e_maps "$m" "${pid[demo-denied.service]}")" "libdemo.so.1 (deleted)" "maps of demo-denied"
    assert_eq "${pid[demo-unrelated.service]}" "$(e2e_unit_pid "$m" demo-unrelated.service)" "MainPID of demo-unrelated (unaffected)"

    t_restart=$(first_ts "$log" 'demo-allowed\.service: restarting')
    t_late=$(e2e_in "$m" cat /run/e2e-late-hook.end)
    ((t_restart > t_late)) || fail "restart ($t_restart) before the later hook ended ($t_late)"
    e2e_log "ok: demo-allowed restarted at $t_restart us, after pacman's later hook ended at $t_late us"
    e2e_measure "pacman-hook finish restarted demo-allowed $(((t_restart - t_late) / 1000)) ms after pacman's last hook ended"
    e2e_in "$m" rm "$LATE_HOOK"

    # The hook cannot run its binary: pacman must still succeed, and
    # nothing is restarted.
    pid[demo-allowed.service]=$(e2e_unit_pid "$m" demo-allowed.service)
    cursor=$(e2e_journal_cursor "$m")
    e2e_in "$m" mv /usr/bin/restart-stale /usr/bin/restart-stale.away
    old=$(cd "$(_e2e_state "$m" rootfs)/srv/pacpkgs/1.0" && echo libdemo1-1.0-1-*.pkg.tar.zst)
    timed_pacman "$m" "-U libdemo1 1.0 without the binary" -U "/srv/pacpkgs/1.0/$old"
    e2e_in "$m" mv /usr/bin/restart-stale.away /usr/bin/restart-stale
    # alpm's own words for a hook it could not execute.
    assert_contains "$out" "command failed to execute correctly" "pacman's output"
    assert_contains "$out" "Noting services that run replaced code (restart-stale)" "pacman's output"
    assert_line "$(e2e_in "$m" pacman -Q libdemo1)" '^libdemo1 1\.0-1$' "pacman -Q libdemo1 after the downgrade"
    assert_eq "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed (nothing ran)"
    assert_no_line "$(e2e_journal "$m" "$cursor")" "restart-stale\\[[0-9]+\\]: |$FINISH" "journal since the downgrade"

    # A wedged system bus (dbus-daemon stopped): the hook gives up on its
    # own and pacman exits 0. The record stays pending; the next
    # transaction's finish (the removal below) takes it.
    new=$(cd "$(_e2e_state "$m" rootfs)/srv/pacpkgs/2.0" && echo libdemo1-2.0-1-*.pkg.tar.zst)
    # systemctl as root talks to PID 1 over its private socket, not the
    # bus; systemd-run --wait does not get far without the bus, so pacman
    # runs straight from nsenter here, under timeout(1) for the bound.
    e2e_in "$m" systemctl kill --signal=SIGSTOP dbus.service
    t0=$(e2e_now_ms)
    rc=0
    out=$(e2e_in "$m" timeout -k 5 "$E2E_PACMAN_BOUND" pacman --noconfirm -U "/srv/pacpkgs/2.0/$new" </dev/null 2>&1) ||
        rc=$?
    ms=$(($(e2e_now_ms) - t0))
    e2e_in "$m" systemctl kill --signal=SIGCONT dbus.service
    printf '%s\n' "$out" | e2e_show_log pacman
    ((rc == 0)) || fail "pacman -U with dbus-daemon stopped exited $rc"
    e2e_measure "pacman -U libdemo1 2.0 with dbus-daemon stopped: $ms ms"
    assert_contains "$out" "gave up after" "pacman's output"
    assert_line "$(e2e_in "$m" pacman -Q libdemo1)" '^libdemo1 2\.0-1$' "pacman -Q libdemo1 with the bus stopped"
    assert_contains "$(e2e_in "$m" cat /run/restart-stale/pacman/pending)" "/libdemo.so.1" \
        "the record the hook wrote before giving up"

    # Leave no demo package behind for a later test.
    e2e_in "$m" systemctl stop "${UNITS[@]}"
    # Its finish also takes the record left pending above (the wait
    # checks that none is left).
    e2e_pacman "$m" -R "${E2E_PACMAN_DEMO[@]}" >/dev/null 2>&1
    e2e_wait_pacman_finish "$m"
}
e2e_test_main t
