#!/usr/bin/env bash
# restart-stale next to Debian's real needrestart (issue 16, part 5;
# docs/needrestart.md).
#
# needrestart's apt hook (DPkg::Post-Invoke) restarts, prompts or lists
# after every dpkg run, by its own policy. The .deb of restart-stale ships
# /etc/needrestart/conf.d/restart-stale.conf, which keeps needrestart to
# listing ('l') while restart-stale's hook restarts. The admin here has
# asked needrestart for automatic restarts ($nrconf{restart} = 'a' in a
# conf.d file of their own), the setting in which both tools would
# restart. needrestart comes from Debian's archive, restart-stale from
# $RESTART_STALE_DEB; every apt-get runs with stdin closed, without
# DEBIAN_FRONTEND and no terminal, in a unit that systemd kills after
# APT_MAX s, so a prompt that waited would fail the run. (Without a
# terminal needrestart's default 'i' falls back to 'l' by itself, hence
# the admin's 'a'. Its dialog with a terminal is not run here: list mode,
# which A proves, never reaches it.)
#
#   A. drop-in in place: apt-get upgrade (libdemo1 1.0 -> 2.0) exits 0;
#      needrestart ran and only listed (its "Services to be restarted:"
#      naming demo-allowed, no "Restarting services..."); demo-allowed was
#      restarted exactly once (new MainPID; one Stopping and one Started
#      line of systemd for it; one "restarting" line of restart-stale),
#      every other demo unit, demo-denied included, kept its PID; no
#      auto-restart-off mark.
#   B. drop-in moved away (the failure the drop-in prevents): the
#      downgrade to 1.0 makes needrestart restart by itself ("Restarting
#      services..."), demo-denied included, which restart-stale's policy
#      denies. This shows that A can fail.
#   C. drop-in back, `-o RestartStale::Auto-Restart=false`: restart-stale
#      only reports and leaves the auto-restart-off mark, so needrestart
#      acts as its admin configured it and restarts demo-allowed, once.
#
# needrestart is purged again at the end. cgroup v1 adds nothing here: both
# tools find the services the same way in either mode, and the hook order
# and needrestart's configuration do not depend on it.
# e2e: modes v2
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

DROPIN=/etc/needrestart/conf.d/restart-stale.conf
ADMIN_CONF=/etc/needrestart/conf.d/50-e2e-admin.conf
MARK=/run/restart-stale/apt/auto-restart-off
APT_MAX=240

# apt_closed M ARGS...: apt-get ARGS in its own unit in user.slice, stdin
# closed, no DEBIAN_FRONTEND, killed after APT_MAX s; prints apt's output.
apt_closed() {
    local m=$1 t0 rc=0
    shift
    t0=$(e2e_now_ms)
    e2e_in "$m" systemd-run --quiet --wait --pipe --collect --slice=user.slice \
        -p RuntimeMaxSec="$APT_MAX" -- \
        apt-get -y -q -o Dpkg::Options::=--force-confold "$@" </dev/null 2>&1 || rc=$?
    e2e_measure "apt-get $* with needrestart installed: $(($(e2e_now_ms) - t0)) ms"
    return "$rc"
}

# show LABEL TEXT: TEXT in the test's log, indented.
show() {
    printf '%s\n' "$2" | sed "s/^/[e2e]   $1| /" >&2
}

# count TEXT ERE: lines of TEXT matching ERE.
count() {
    grep -cE -- "$2" <<<"$1" || true
}

# pids M ARRAY: MainPID of every demo unit into the associative ARRAY.
pids() {
    local m=$1 u
    local -n into=$2
    for u in "${E2E_DEMO_UNITS[@]}"; do
        # shellcheck disable=SC2034,SC2004 # the caller's associative array
        into[$u]=$(e2e_unit_pid "$m" "$u")
    done
}

t() {
    local m=$1 u out cursor log alog n
    local -A pid now

    e2e_apt_setup "$m" pid
    e2e_step "install needrestart from the archive" e2e_archive_install "$m" needrestart needrestart
    e2e_wait_apt_finish "$m"
    # shellcheck disable=SC2016 # dpkg-query's format
    e2e_log "needrestart $(e2e_in "$m" dpkg-query -W -f='${Version}' needrestart)"
    # shellcheck disable=SC2016 # dpkg-query's format
    assert_contains "$(e2e_in "$m" dpkg-query -W -f='${Conffiles}' restart-stale)" "$DROPIN" \
        "conffiles of restart-stale"
    # shellcheck disable=SC2016 # Perl, for needrestart
    e2e_in "$m" sh -c 'printf "%s\n" "$1" >"$2"' sh '$nrconf{restart} = '"'a';" "$ADMIN_CONF"
    pids "$m" pid

    # --- A: both tools, drop-in in place: one restart, by restart-stale.
    e2e_publish "$m" v2
    cursor=$(e2e_journal_cursor "$m")
    out=$(apt_closed "$m" upgrade) || {
        show apt "$out"
        fail "A: apt-get upgrade failed or was killed after ${APT_MAX}s"
    }
    show apt "$out"
    e2e_step "A: wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    assert_line "$out" '^ *Services to be restarted:' "A: apt output (needrestart listed)"
    assert_line "$out" 'systemctl restart .*demo-allowed\.service' "A: apt output (needrestart listed)"
    assert_no_line "$out" 'Restarting services' "A: apt output"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    # The whole journal: systemd logs "Stopping" of a restart job under
    # neither unit's -u match.
    alog=$(e2e_journal "$m" "$cursor" | grep -E 'demo-allowed' || true)
    show restart-stale "$log"
    show demo-allowed "$alog"
    assert_eq 1 "$(count "$log" 'demo-allowed\.service: restarting')" "A: restarts of demo-allowed by restart-stale"
    assert_eq 1 "$(count "$alog" 'systemd\[1\]: Stopping demo-allowed\.service')" "A: stops of demo-allowed"
    assert_eq 1 "$(count "$alog" 'systemd\[1\]: Started demo-allowed\.service')" "A: starts of demo-allowed"
    pids "$m" now
    assert_ne "${pid[demo-allowed.service]}" "${now[demo-allowed.service]}" "A: MainPID of demo-allowed"
    for u in "${E2E_DEMO_UNITS[@]}"; do
        [[ $u == demo-allowed.service ]] && continue
        assert_eq "${pid[$u]}" "${now[$u]}" "A: MainPID of $u"
    done
    assert_contains "$(e2e_maps "$m" "${now[demo-denied.service]}")" "libdemo.so.1 (deleted)" \
        "A: maps of demo-denied (stale, listed, not restarted)"
    if e2e_in "$m" test -e "$MARK"; then
        fail "A: $MARK exists although automatic restarts are on"
    fi

    # --- B: without the drop-in, needrestart restarts by itself.
    e2e_in "$m" mv "$DROPIN" /root/restart-stale.conf.away
    e2e_publish "$m" v1
    out=$(apt_closed "$m" install --allow-downgrades libdemo1=1.0) || {
        show apt "$out"
        e2e_in "$m" mv /root/restart-stale.conf.away "$DROPIN"
        fail "B: apt-get install failed or was killed after ${APT_MAX}s"
    }
    e2e_in "$m" mv /root/restart-stale.conf.away "$DROPIN"
    show apt "$out"
    e2e_step "B: wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    assert_line "$out" 'Restarting services' "B: apt output (needrestart restarting by itself)"
    pid=()
    pids "$m" pid
    assert_ne "${now[demo-denied.service]}" "${pid[demo-denied.service]}" \
        "B: MainPID of demo-denied (restarted by needrestart without the drop-in)"
    # needrestart's own restarts include systemd-journald on this test bed,
    # so the journal of B has gaps: the PID tells.

    # --- C: drop-in back, restart-stale report-only: needrestart as configured.
    e2e_publish "$m" v2
    cursor=$(e2e_journal_cursor "$m")
    out=$(apt_closed "$m" -o RestartStale::Auto-Restart=false upgrade) || {
        show apt "$out"
        fail "C: apt-get upgrade failed or was killed after ${APT_MAX}s"
    }
    show apt "$out"
    e2e_step "C: wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    e2e_in "$m" test -e "$MARK" || fail "C: no $MARK although automatic restarts were off"
    assert_line "$out" 'Restarting services' "C: apt output (needrestart as configured)"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    alog=$(e2e_journal "$m" "$cursor" | grep -E 'demo-allowed' || true)
    show restart-stale "$log"
    show demo-allowed "$alog"
    assert_line "$log" 'automatic restarts are off' "C: finish journal"
    assert_eq 0 "$(count "$log" 'demo-allowed\.service: restarting')" "C: restarts of demo-allowed by restart-stale"
    assert_eq 1 "$(count "$alog" 'systemd\[1\]: Stopping demo-allowed\.service')" "C: stops of demo-allowed"
    assert_eq 1 "$(count "$alog" 'systemd\[1\]: Started demo-allowed\.service')" "C: starts of demo-allowed"
    n=$(e2e_unit_pid "$m" demo-allowed.service)
    assert_ne "${pid[demo-allowed.service]}" "$n" "C: MainPID of demo-allowed (restarted by needrestart)"

    e2e_in "$m" rm -f "$ADMIN_CONF"
    e2e_step "purge needrestart" e2e_apt "$m" purge needrestart >/dev/null
    e2e_apt "$m" autoremove --purge >/dev/null
    e2e_wait_apt_finish "$m"
}
e2e_test_main t
