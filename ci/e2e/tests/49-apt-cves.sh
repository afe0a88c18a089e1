#!/usr/bin/env bash
# Which fixes are still live (issue 25, docs/cves.md), after real apt
# upgrades of libdemo1 with `restart = security` in /etc/restart-stale.conf:
#   - 2.0's changelog.Debian.gz names CVE-2026-10001 and CVE-2026-10002 in
#     an urgency=high upload to bookworm-security: the finish restarts
#     demo-allowed and its report names both CVEs; denied demo-denied stays
#     stale and replay's JSON and text name both for it;
#   - 3.0's entry names none and comes from bookworm: the finish marks
#     demo-allowed needs-restart instead of restarting it, and its plan line
#     says mark, not restart; replay's JSON gives it no CVE.
# e2e: releases bookworm
# e2e: modes v2
# (The changelog reader and the policy read files and unit properties that
# neither the cgroup mode nor systemd 252 vs 257 change; the finish itself
# runs in both modes and on trixie in 20, 22 and 28.)
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CONF=/etc/restart-stale.conf
DOC=/usr/share/doc/libdemo1/changelog.Debian.gz

markers() { e2e_in "$1" systemctl show -P Markers "$2"; }

# fix JSON UNIT FIELD: FIELD of UNIT's first `fixes` entry in a report
# (lists joined by commas), `none` if the unit has no fixes.
fix() {
    python3 -c 'import json, sys
d = json.loads(sys.argv[1])
for u in d.get("units", []):
    if u.get("unit") == sys.argv[2]:
        f = (u.get("fixes") or [None])[0]
        if f is None:
            print("none")
        else:
            v = f.get(sys.argv[3])
            print(",".join(v) if isinstance(v, list) else json.dumps(v))
        break' "$1" "$2" "$3"
}

# replay NAME ARGS...: `restart-stale replay --apt-history -n ARGS` as an
# admin would; it exits 3 while restarts are pending, which is expected.
replay() {
    local m=$1 rc=0 out
    shift
    out=$(e2e_run "$m" restart-stale replay --apt-history -n "$@" 2>/dev/null) || rc=$?
    [[ $rc == 0 || $rc == 3 ]] || fail "replay $* exited $rc"
    printf '%s\n' "$out"
}

# changelogs DIR: DIR/2.0 and DIR/3.0, libdemo's debian/changelog of each.
changelogs() {
    local entry10 entry20
    entry10='libdemo (1.0) bookworm; urgency=medium

  * Initial release. Fixes CVE-2020-0001, long gone.

 -- restart-stale e2e <e2e@localhost>  Thu, 01 Jan 2026 00:00:00 +0000'
    entry20='libdemo (2.0) bookworm-security; urgency=high

  * Fix CVE-2026-10002: integer overflow in demo_tick().
  * Fix CVE-2026-10001: heap overflow in the name parser.

 -- restart-stale e2e <e2e@localhost>  Sun, 01 Feb 2026 00:00:00 +0000'
    printf '%s\n\n%s\n' "$entry20" "$entry10" >"$1/2.0"
    printf '%s\n\n%s\n\n%s\n' 'libdemo (3.0) bookworm; urgency=medium

  * New upstream release.

 -- restart-stale e2e <e2e@localhost>  Sun, 01 Mar 2026 00:00:00 +0000' "$entry20" "$entry10" >"$1/3.0"
}

t() {
    local m=$1 dir u log out allowed cursor
    local -A pid

    dir=$(mktemp -d "$E2E_WORK_DIR/49-cves.XXXXXX")
    changelogs "$dir"
    e2e_demo_redeb libdemo1 2.0 2.0 "$dir/2.0" "$dir/debs-2.0"
    # 3.0 ships 1.0's library: its bytes differ from the 2.0 that runs by
    # then, as a real upgrade's would.
    e2e_demo_redeb libdemo1 1.0 3.0 "$dir/3.0" "$dir/debs-3.0"

    e2e_apt_setup "$m" pid
    printf 'restart = security\n' | e2e_in "$m" tee "$CONF" >/dev/null

    # ---- 2.0: two CVEs, urgency=high, bookworm-security: restart now
    e2e_publish_debs "$m" "$dir"/debs-2.0/libdemo1_2.0_*.deb
    cursor=$(e2e_journal_cursor "$m")
    e2e_step "apt-get upgrade to 2.0" e2e_apt "$m" upgrade
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | e2e_show_log
    e2e_in "$m" test -s "$DOC" || fail "$DOC is not installed in $m (path-exclude?)"

    assert_ne "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" \
        "MainPID of demo-allowed after the 2.0 upgrade"
    assert_eq "" "$(markers "$m" demo-allowed.service)" "Markers of demo-allowed after 2.0"
    for u in demo-denied.service demo-unrelated.service demo-slow1.service; do
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u after the 2.0 upgrade"
    done
    assert_line "$log" 'demo-allowed\.service +restart +\(allowed by admin' "finish report (2.0)"
    assert_contains "$log" \
        "fixes still live: CVE-2026-10001, CVE-2026-10002 (libdemo1 1.0 → 2.0, security, urgency high)" \
        "finish report (2.0)"
    assert_not_contains "$log" "CVE-2020-0001" "finish report (2.0)"

    out=$(replay "$m" --json | grep '^{' | tail -n 1)
    assert_eq "CVE-2026-10001,CVE-2026-10002" "$(fix "$out" demo-denied.service cves)" \
        "JSON cves of demo-denied"
    assert_eq true "$(fix "$out" demo-denied.service security)" "JSON security of demo-denied"
    assert_eq '"high"' "$(fix "$out" demo-denied.service urgency)" "JSON urgency of demo-denied"
    assert_eq '"1.0"' "$(fix "$out" demo-denied.service from)" "JSON from of demo-denied"
    assert_eq '"2.0"' "$(fix "$out" demo-denied.service to)" "JSON to of demo-denied"
    out=$(replay "$m")
    assert_line "$out" '^demo-denied\.service +skip ' "replay report (2.0)"
    assert_contains "$(sed -n '/^demo-denied\.service/,/^[^ ]/p' <<<"$out")" \
        "fixes still live: CVE-2026-10001, CVE-2026-10002 (libdemo1 1.0 → 2.0, security, urgency high)" \
        "demo-denied's block of the replay report"

    # ---- 3.0: no CVE, not a security upload: marked, not restarted
    allowed=$(e2e_unit_pid "$m" demo-allowed.service)
    e2e_publish_debs "$m" "$dir"/debs-3.0/libdemo1_3.0_*.deb
    cursor=$(e2e_journal_cursor "$m")
    e2e_step "apt-get upgrade to 3.0" e2e_apt "$m" upgrade
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | e2e_show_log

    assert_eq "$allowed" "$(e2e_unit_pid "$m" demo-allowed.service)" \
        "MainPID of demo-allowed after the 3.0 upgrade"
    assert_eq "needs-restart" "$(markers "$m" demo-allowed.service)" "Markers of demo-allowed after 3.0"
    assert_line "$log" 'demo-allowed\.service +mark +\(allowed by admin: [^)]*; no security fix: marked for the maintenance window\)' \
        "finish report (3.0)"
    assert_no_line "$log" 'demo-allowed\.service +restart ' "finish report (3.0)"
    assert_contains "$log" "fixes still live: no CVE named (libdemo1 2.0 → 3.0)" "finish report (3.0)"
    assert_line "$log" 'demo-allowed\.service: no security fix behind its stale code: marking it' \
        "finish journal (3.0)"
    assert_no_line "$log" ': restarting |restarted in ' "finish journal (3.0)"

    out=$(replay "$m" --json | grep '^{' | tail -n 1)
    assert_eq "" "$(fix "$out" demo-allowed.service cves)" "JSON cves of demo-allowed after 3.0"
    assert_eq false "$(fix "$out" demo-allowed.service security)" "JSON security of demo-allowed after 3.0"

    # ---- undo: the policy file goes, the window clears the mark
    e2e_in "$m" rm -f "$CONF"
    e2e_step "restart-stale --marked" e2e_in "$m" restart-stale --marked
    assert_eq "" "$(markers "$m" demo-allowed.service)" "Markers of demo-allowed after --marked"
    rm -rf "$dir"
}
e2e_test_main t
