#!/usr/bin/env bash
# A real unattended-upgrades run (issue 12), started the way the system
# starts it: `systemctl start apt-daily-upgrade.service`, whose
# apt.systemd.daily runs `unattended-upgrade`. Debian's unattended-upgrades
# is installed from the archive (e2e_archive_install); the local repo's
# Release file names the origin restart-stale-e2e, the only entry of
# Unattended-Upgrade::Origins-Pattern. libdemo1 and demo-allowed go from
# 1.0 to 2.0. u-u holds the dpkg frontend lock for its whole run and
# commits in minimal steps, each a dpkg run with its own apt hooks.
# Checked:
#   - u-u succeeded: apt.systemd.daily logs "unattended-upgrade (success)"
#     (it ignores u-u's exit status otherwise; APT::Periodic::Verbose "1"
#     makes it say), the service result is success, u-u's log says it
#     upgraded both packages and has no error;
#   - restart-stale-apt.service started once and acted once, on one record
#     naming both packages and u-u's command line;
#   - demo-allowed was started exactly once (its journal), running 2.0 on
#     libdemo 2.0, clean maps; demo-denied (denied) and demo-unrelated
#     (unaffected) kept their PIDs; apt-daily-upgrade.service was not
#     touched by restart-stale;
#   - the restart came after u-u had finished: after apt.systemd.daily's
#     success line and after apt-daily-upgrade.service ended (journal
#     timestamps, microseconds).
# Installing u-u may upgrade libraries of the rootfs (liblzma5, from a
# newer point release than the cached rootfs); PID 1 maps liblzma, so
# that install's finish may re-execute PID 1. e2e_wait_apt_finish copes.
# Only in cgroup v2: what differs in v1 (finding a process's unit) is
# covered by 20-apt-upgrade.sh and 22-apt-once.sh in both modes; this test
# adds u-u's own sequence of dpkg runs, which does not depend on the
# cgroup mode, and costs ~30 s (python3 and u-u installed, u-u's run).
# e2e: modes v2
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

UU_CONF=/etc/apt/apt.conf.d/52e2e-unattended-upgrades
UU_LOG=/var/log/unattended-upgrades/unattended-upgrades.log
SERVICE=apt-daily-upgrade.service

# us TIMESTAMP: seconds.microseconds -> integer microseconds.
us() {
    local s=${1%.*} f=${1#*.}
    echo $((s * 1000000 + 10#$f))
}

# first_ts LOG ERE: the short-unix timestamp of LOG's first line matching
# ERE, in microseconds.
first_ts() {
    local line
    line=$(grep -E -m 1 -- "$2" <<<"$1") || fail "no line matches /$2/"
    us "${line%% *}"
}

t() {
    local m=$1 arch u cursor rc log flog alog ulog n t t_restart t_stop t_uu t_end
    local -A pid
    arch=$(dpkg --print-architecture)

    e2e_apt_setup "$m" pid
    e2e_step "install unattended-upgrades" e2e_archive_install "$m" unattended-upgrades unattended-upgrades
    e2e_wait_apt_finish "$m"
    # What an admin writes to let u-u upgrade from one more origin; the
    # package's 50unattended-upgrades stays as installed. Verbose 1 makes
    # apt.systemd.daily log u-u's result; "always" ignores its day stamp.
    e2e_in "$m" sh -c "cat >$UU_CONF" <<EOF
APT::Periodic::Enable "1";
APT::Periodic::Verbose "1";
APT::Periodic::Update-Package-Lists "0";
APT::Periodic::Unattended-Upgrade "always";
#clear Unattended-Upgrade::Origins-Pattern;
Unattended-Upgrade::Origins-Pattern { "origin=$E2E_REPO_ORIGIN"; };
EOF
    e2e_in "$m" rm -f "$UU_LOG"

    # apt-daily.service would fetch the lists; its timer is masked, and
    # e2e_publish runs apt-get update itself.
    e2e_publish "$m" v2 libdemo1 demo-allowed
    cursor=$(e2e_journal_cursor "$m")
    rc=0
    e2e_step "systemctl start $SERVICE" e2e_in "$m" systemctl start "$SERVICE" || rc=$?
    assert_eq 0 "$rc" "exit status of systemctl start $SERVICE"
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"

    # ---- u-u ran and succeeded
    ulog=$(e2e_journal "$m" "$cursor" -u "$SERVICE")
    printf '%s\n' "$ulog" | e2e_show_log apt-daily-upgrade
    assert_line "$ulog" 'unattended-upgrade \(success\)$' "$SERVICE journal"
    assert_eq success "$(e2e_in "$m" systemctl show -p Result --value "$SERVICE")" "result of $SERVICE"
    log=$(e2e_in "$m" cat "$UU_LOG")
    printf '%s\n' "$log" | e2e_show_log "u-u log"
    assert_line "$log" 'Packages that will be upgraded: demo-allowed libdemo1$' "u-u log"
    assert_line "$log" 'All upgrades installed$' "u-u log"
    assert_no_line "$log" ' ERROR ' "u-u log"
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    assert_eq "2.0 2.0" "$(e2e_in "$m" dpkg-query -W -f='${Version} ' libdemo1 demo-allowed | sed 's/ $//')" \
        "installed libdemo1 and demo-allowed"
    n=$(e2e_in "$m" grep -c '^Log started' /var/log/unattended-upgrades/unattended-upgrades-dpkg.log || true)
    e2e_log "u-u committed in $n step(s) (its dpkg log)"
    ((n >= 2)) || fail "u-u committed in $n step(s), not in several: the test would not prove 'once'"

    # ---- restart-stale acted once
    flog=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$flog" | e2e_show_log finish
    n=$(grep -cE "systemd\\[1\\]: Starting $E2E_FINISH_UNIT" <<<"$flog" || true)
    assert_eq 1 "$n" "starts of $E2E_FINISH_UNIT"
    n=$(grep -c 'apt transaction (' <<<"$flog" || true)
    assert_eq 1 "$n" "transactions acted on"
    assert_line "$flog" "apt transaction \\([0-9]+ hook runs, [^)]*unattended-upgrade[^)]*\\): demo-allowed:$arch 1\\.0 → 2\\.0, libdemo1:$arch 1\\.0 → 2\\.0\$" \
        "finish journal"
    n=$(grep -c 'demo-allowed\.service: restarting' <<<"$flog" || true)
    assert_eq 1 "$n" "restarts of demo-allowed by restart-stale"
    assert_line "$flog" 'demo-allowed\.service: restarted in .*, verified clean$' "finish journal"
    assert_line "$flog" 'demo-denied\.service +skip +\(denied by admin' "finish journal"
    assert_no_line "$flog" 'apt-daily|unattended-upgrades\.service' "finish journal"
    assert_line "$flog" "systemd\\[1\\]: $E2E_FINISH_UNIT: Deactivated successfully" "finish journal"

    alog=$(e2e_journal "$m" "$cursor" -u demo-allowed.service)
    printf '%s\n' "$alog" | e2e_show_log demo-allowed
    e2e_assert_demo_on_2_0 "$m" "$alog" "${pid[demo-allowed.service]}"
    for u in demo-denied.service demo-unrelated.service demo-otherdel.service; do
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u"
    done

    # ---- after u-u, not during it
    # The first thing demo-allowed's journal says after the cursor is its
    # old process ending; restart-stale logs "restarting" just before.
    t_restart=$(first_ts "$flog" 'demo-allowed\.service: restarting')
    t_stop=$(first_ts "$alog" '.')
    t_uu=$(first_ts "$ulog" 'unattended-upgrade \(success\)$')
    t_end=$(first_ts "$ulog" "systemd\\[1\\]: ($SERVICE: Deactivated successfully|Finished )")
    for t in "$t_restart" "$t_stop"; do
        ((t > t_uu)) || fail "demo-allowed restarted ($t) before u-u had exited ($t_uu)"
        ((t > t_end)) || fail "demo-allowed restarted ($t) before $SERVICE ended ($t_end)"
    done
    e2e_log "ok: restart of demo-allowed at $t_restart us, its first journal line at $t_stop, after u-u exited ($t_uu) and $SERVICE ended ($t_end)"
    e2e_measure "restart-stale restarted demo-allowed $(((t_restart - t_end) / 1000)) ms after $SERVICE ended"

    # ---- undo: u-u, python3 and the admin file go again
    e2e_in "$m" rm -f "$UU_CONF"
    e2e_step "purge unattended-upgrades" e2e_apt "$m" purge --autoremove unattended-upgrades >/dev/null
    e2e_wait_apt_finish "$m"
}
e2e_test_main t
