#!/usr/bin/env bash
# Health-gated restarts (issue 24, docs/restarts.md), after a real apt
# upgrade, with the five stale allowed demo-slow units:
#   - demo-slow5 crashes 1 s after each start once /etc/demo-crash exists
#     (made before the upgrade, so the running process is unaffected);
#   - demo-slow4 is ordered After= demo-slow5: a later wave;
#   - demo-slow2 Requires= demo-slow3: one restart job with it.
# `restart-stale --json` then restarts wave 1 (1, 3 with 2, 5), sees 5 fail
# within the settle time, holds 4 (same PID, still stale, reported with the
# reason) and exits 5. Then a unit at its start limit (StartLimitBurst=1,
# started just now) is held, not restarted, while the others restart.
# e2e: releases bookworm
# e2e: modes v2
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

SLOW=(demo-slow1.service demo-slow2.service demo-slow3.service demo-slow4.service demo-slow5.service)

# dropin NAME UNIT TEXT: /etc/systemd/system/UNIT.d/48-gate.conf holds TEXT.
dropin() {
    e2e_in "$1" mkdir -p "/etc/systemd/system/$2.d"
    printf '%s\n' "$3" | e2e_in "$1" tee "/etc/systemd/system/$2.d/48-gate.conf" >/dev/null
}

# result JSON UNIT FIELD: FIELD of UNIT's entry in the report's restarts.
result() {
    python3 -c 'import json, sys
d = json.loads(sys.argv[1])
for r in d.get("restarts", []):
    if r.get("unit") == sys.argv[2]:
        print(r.get(sys.argv[3], ""))
        break' "$1" "$2" "$3"
}

# gate_run NAME ARGS...: restart-stale ARGS --json as an admin would; sets
# $out (the JSON line) and $rc.
gate_run() {
    local m=$1
    shift
    rc=0
    out=$(e2e_run "$m" restart-stale "$@" --json 2> >(grep -v "^{" | sed "s/^/[e2e]   ! /" >&2)) || rc=$?
    out=$(grep '^{' <<<"$out" | tail -n 1)
}

t() {
    local m=$1 u out rc
    local -A pid

    e2e_step "reset" e2e_demo_reset "$m"
    e2e_step "install demo packages" e2e_demo_install "$m"
    e2e_step "install restart-stale" e2e_require_tool "$m"
    e2e_wait_apt_finish "$m"
    e2e_in "$m" rm -f /etc/demo-crash
    dropin "$m" demo-slow5.service '[Service]
ExecStart=
ExecStart=/bin/sh -c "if [ -e /etc/demo-crash ]; then sleep 1; exit 1; fi; exec /usr/bin/demo-slow demo-slow5"'
    dropin "$m" demo-slow4.service '[Unit]
After=demo-slow5.service'
    dropin "$m" demo-slow2.service '[Unit]
Requires=demo-slow3.service'
    e2e_in "$m" systemctl daemon-reload
    e2e_in "$m" systemctl restart "${SLOW[@]}"
    e2e_wait_active "$m" "${SLOW[@]}"
    for u in "${SLOW[@]}"; do
        e2e_policy "$m" "$u" allow
    done

    # ---- a crash in wave 1 holds wave 2
    e2e_publish "$m" v2
    e2e_step "apt-get upgrade (no automatic restart)" \
        e2e_apt "$m" -o RestartStale::Auto-Restart=false upgrade
    e2e_wait_apt_finish "$m"
    for u in "${SLOW[@]}"; do
        pid[$u]=$(e2e_unit_pid "$m" "$u")
        assert_contains "$(e2e_maps "$m" "${pid[$u]}")" "libdemo.so.1 (deleted)" "maps of $u"
    done
    e2e_in "$m" touch /etc/demo-crash
    e2e_step "restart-stale (wave 1 crashes)" gate_run "$m"
    printf '%s\n' "$out" | head -c 4000 | e2e_show_log
    echo >&2
    assert_eq 5 "$rc" "exit status of restart-stale (a failure held later waves)"
    assert_eq failed "$(result "$out" demo-slow5.service outcome)" "outcome of demo-slow5"
    assert_ne "" "$(result "$out" demo-slow5.service invocation_id)" "invocation_id of demo-slow5"
    assert_eq held "$(result "$out" demo-slow4.service outcome)" "outcome of demo-slow4"
    assert_contains "$(result "$out" demo-slow4.service held)" "earlier restart of demo-slow5.service failed" \
        "held reason of demo-slow4"
    assert_eq 2 "$(result "$out" demo-slow4.service wave)" "wave of demo-slow4"
    assert_eq "${pid[demo-slow4.service]}" "$(e2e_unit_pid "$m" demo-slow4.service)" "MainPID of demo-slow4 (held)"
    assert_contains "$(e2e_maps "$m" "${pid[demo-slow4.service]}")" "libdemo.so.1 (deleted)" \
        "maps of demo-slow4 (still the old library)"
    for u in demo-slow1.service demo-slow2.service demo-slow3.service; do
        assert_eq restarted "$(result "$out" "$u" outcome)" "outcome of $u"
        assert_ne "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u (same wave, restarted)"
        assert_not_contains "$(e2e_maps "$m" "$(e2e_unit_pid "$m" "$u")")" "(deleted)" "maps of the new $u"
    done
    # Monitoring's batch view says why the stale unit was left alone.
    batch=$(e2e_in "$m" restart-stale status --batch || true)
    assert_contains "$batch" "RESTART-STALE-HELD: demo-slow4.service earlier-failure" "status --batch after the crash"

    # ---- a unit at its start limit is held
    e2e_in "$m" rm -f /etc/demo-crash
    dropin "$m" demo-slow1.service '[Unit]
StartLimitBurst=1
StartLimitIntervalSec=3600'
    e2e_in "$m" systemctl daemon-reload
    e2e_in "$m" systemctl reset-failed demo-slow5.service
    e2e_in "$m" systemctl restart demo-slow1.service demo-slow5.service
    e2e_wait_active "$m" "${SLOW[@]}"
    e2e_publish "$m" v1
    e2e_step "apt-get downgrade (no automatic restart)" \
        e2e_apt "$m" -o RestartStale::Auto-Restart=false install --allow-downgrades libdemo1=1.0
    e2e_wait_apt_finish "$m"
    for u in "${SLOW[@]}"; do
        pid[$u]=$(e2e_unit_pid "$m" "$u")
    done
    e2e_step "restart-stale (start limit)" gate_run "$m" --settle 1
    python3 -c 'import json, sys
d = json.loads(sys.argv[1])
print(sys.argv[2], json.dumps(d.get("restarts")), [(u["unit"], u["action"], u["reason"]) for u in d["units"]], d.get("problems"), d.get("warnings"))' "$out" "$rc" |
        e2e_show_log
    assert_eq held "$(result "$out" demo-slow1.service outcome)" "outcome of demo-slow1"
    assert_eq start-limit "$(result "$out" demo-slow1.service result)" "result of demo-slow1"
    assert_eq "${pid[demo-slow1.service]}" "$(e2e_unit_pid "$m" demo-slow1.service)" "MainPID of demo-slow1 (held)"
    assert_eq active "$(e2e_in "$m" systemctl is-active demo-slow1.service || true)" "demo-slow1 still running"
    for u in demo-slow4.service demo-slow5.service; do
        assert_eq restarted "$(result "$out" "$u" outcome)" "outcome of $u"
        assert_ne "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u"
    done
    assert_ne 0 "$rc" "exit status of restart-stale (a unit held)"
    batch=$(e2e_in "$m" restart-stale status --batch || true)
    assert_contains "$batch" "RESTART-STALE-HELD: demo-slow1.service start-limit" "status --batch at the start limit"
    assert_not_contains "$batch" "demo-slow4" "status --batch once demo-slow4 was restarted"
    e2e_measure "health gate: exit $rc with demo-slow1 held at its start limit"

    # Leave the units as the other tests expect them.
    for u in "${SLOW[@]}"; do
        e2e_in "$m" rm -rf "/etc/systemd/system/$u.d"
        e2e_policy "$m" "$u" none
    done
    e2e_in "$m" systemctl daemon-reload
}
e2e_test_main t
