#!/usr/bin/env bash
# The restart step (issue 3) against a real systemd as PID 1, run by hand as
# an admin would (`restart-stale` in its own unit, no apt hook involved).
#
# After libdemo1 1.0 -> 2.0 every demo daemon maps the deleted old library.
# Besides the demo packages, this test adds units for the refinement rules:
#   t-refuse.service     RefuseManualStop=yes            -> not restarted
#   t-acc.socket         Accept=yes, one live connection -> its instance
#   t-acc@.service                                          is not restarted
#   t-leftover.service   KillMode=process; the stale process is a child the
#                        main process left behind        -> "leftover", and
#                        not restarted on the next run either (no loop)
#   t-fail.service       its new version fails to start  -> failed, exit 4
# and checks what it must (issue 3, "Done when"):
#   - allowed demo-allowed: new PID, new maps clean, "verified clean";
#   - demo-unrelated (does not map libdemo): same PID;
#   - denied demo-denied: same PID, reported as denied;
#   - the rules above, each with its reason, every PID unchanged;
#   - `-n` first changes nothing and exits 3;
#   - exit status 4 (restart-stale(1): a restart failed).
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

T_UNITS=(t-refuse.service t-leftover.service t-fail.service t-acc.socket t-conn.service)

# The extra units live in /etc/systemd/system; remove them (and their
# state) so a shared container is left as the demo reset expects.
remove_t_units() {
    local m=$1
    # SIGKILL to every process of each unit first: `stop` is refused for
    # t-refuse, and leaves t-leftover's child running.
    e2e_in "$m" systemctl kill --signal=SIGKILL "${T_UNITS[@]}" 't-acc@*.service' 2>/dev/null || true
    e2e_in "$m" systemctl stop "${T_UNITS[@]}" 't-acc@*.service' 2>/dev/null || true
    e2e_in "$m" rm -f /etc/systemd/system/t-refuse.service /etc/systemd/system/t-leftover.service \
        /etc/systemd/system/t-fail.service /etc/systemd/system/t-acc.socket \
        /etc/systemd/system/t-acc@.service /etc/t-fail-broken
    e2e_in "$m" systemctl daemon-reload
    e2e_in "$m" systemctl reset-failed 2>/dev/null || true
}

# write_unit NAME < TEXT: a unit file under /etc/systemd/system inside.
write_unit() {
    local m=$1 unit=$2
    e2e_in "$m" sh -c "cat >/etc/systemd/system/$unit"
}

add_t_units() {
    local m=$1
    write_unit "$m" t-refuse.service <<'EOF'
[Unit]
Description=e2e: refuses manual stop
RefuseManualStop=yes
[Service]
ExecStart=/usr/bin/demo-slow t-refuse
EOF
    # The main process (sleep) is not stale; the child that maps libdemo
    # survives any restart because of KillMode=process.
    write_unit "$m" t-leftover.service <<'EOF'
[Unit]
Description=e2e: KillMode=process with a stale child
[Service]
KillMode=process
ExecStart=/bin/sh -c '/usr/bin/demo-slow t-leftover-child & exec sleep infinity'
EOF
    # Its "new version" refuses to start once /etc/t-fail-broken exists.
    write_unit "$m" t-fail.service <<'EOF'
[Unit]
Description=e2e: new version fails to start
[Service]
ExecStartPre=/bin/sh -c 'test ! -e /etc/t-fail-broken'
ExecStart=/usr/bin/demo-slow t-fail
EOF
    write_unit "$m" t-acc.socket <<'EOF'
[Unit]
Description=e2e: per-connection service
[Socket]
ListenStream=127.0.0.1:7777
Accept=yes
EOF
    write_unit "$m" t-acc@.service <<'EOF'
[Unit]
Description=e2e: per-connection instance
[Service]
ExecStart=/usr/bin/demo-slow t-acc
StandardInput=socket
StandardOutput=journal
EOF
    e2e_in "$m" systemctl daemon-reload
    e2e_in "$m" systemctl start t-refuse.service t-leftover.service t-fail.service t-acc.socket
    # One live connection, held by a unit of its own, spawns an instance.
    e2e_in "$m" systemd-run --quiet --unit=t-conn --collect \
        /bin/bash -c 'exec 3<>/dev/tcp/127.0.0.1/7777; exec sleep infinity'
    e2e_wait_active "$m" t-refuse.service t-leftover.service t-fail.service t-conn.service
}

# accept_instance NAME: the running t-acc@….service (waits up to 10 s).
accept_instance() {
    local m=$1 i inst
    for ((i = 0; i < 100; i++)); do
        inst=$(e2e_in "$m" systemctl list-units --plain --no-legend --state=running 't-acc@*.service' |
            awk 'NR == 1 { print $1 }')
        [[ -n $inst ]] && break
        sleep 0.1
    done
    [[ -n $inst ]] || fail "no t-acc@ instance is running"
    echo "$inst"
}

# leftover_child NAME: the PID in t-leftover's cgroup that is not MainPID.
leftover_child() {
    local m=$1 main
    main=$(e2e_unit_pid "$m" t-leftover.service)
    e2e_unit_procs "$m" t-leftover.service | grep -vx "$main" || true
}

# run_tool NAME ARGS...: run restart-stale as an admin would; sets $out
# (its stdout and stderr) and $rc.
run_tool() {
    local m=$1
    shift
    rc=0
    out=$(e2e_run "$m" restart-stale "$@" 2>&1) || rc=$?
}

t() {
    local m=$1 u acc child out rc
    local -A pid

    e2e_step "reset" e2e_demo_reset "$m"
    remove_t_units "$m"
    # Not installed yet: the upgrade below must leave everything stale,
    # with no apt hook restarting anything.
    e2e_remove_tool "$m"
    e2e_step "install demo packages" e2e_demo_install "$m"
    e2e_step "add test units" add_t_units "$m"
    acc=$(accept_instance "$m")
    e2e_log "accept instance: $acc"
    for u in demo-allowed.service t-refuse.service t-leftover.service t-fail.service t-acc@.service; do
        e2e_policy "$m" "$u" allow
    done
    e2e_policy "$m" demo-denied.service deny

    for u in demo-allowed.service demo-denied.service demo-unrelated.service \
        t-refuse.service t-leftover.service t-fail.service "$acc"; do
        pid[$u]=$(e2e_unit_pid "$m" "$u")
        assert_ne 0 "${pid[$u]}" "MainPID of $u"
    done
    child=$(leftover_child "$m")
    assert_ne "" "$child" "leftover child of t-leftover"

    e2e_step "upgrade libdemo1 to 2.0" e2e_publish "$m" v2
    e2e_apt "$m" upgrade >/dev/null
    assert_contains "$(e2e_maps "$m" "$child")" "libdemo.so.1 (deleted)" "maps of the t-leftover child"
    assert_contains "$(e2e_maps "$m" "${pid[$acc]}")" "libdemo.so.1 (deleted)" "maps of $acc"
    e2e_in "$m" touch /etc/t-fail-broken
    e2e_step "install restart-stale" e2e_require_tool "$m"

    # ---- dry run: decisions only
    run_tool "$m" -n
    e2e_log "restart-stale -n exited $rc"
    assert_eq 3 "$rc" "exit status of restart-stale -n (restarts needed, not done)"
    for u in "${!pid[@]}"; do
        assert_eq "${pid[$u]}" "$(e2e_unit_pid "$m" "$u")" "MainPID of $u after -n"
    done

    # ---- the real run
    run_tool "$m"
    printf '%s\n' "$out" | e2e_show_log
    assert_eq 4 "$rc" "exit status (4: a restart failed)"

    local new
    new=$(e2e_unit_pid "$m" demo-allowed.service)
    assert_ne "${pid[demo-allowed.service]}" "$new" "MainPID of demo-allowed"
    assert_ne 0 "$new" "MainPID of demo-allowed"
    assert_contains "$(e2e_maps "$m" "$new")" "libdemo.so.1" "maps of the new demo-allowed"
    assert_not_contains "$(e2e_maps "$m" "$new")" "(deleted)" "maps of the new demo-allowed"
    assert_line "$out" '^restart-stale: demo-allowed\.service: restarted in .*, verified clean$' "output"

    assert_eq "${pid[demo-unrelated.service]}" "$(e2e_unit_pid "$m" demo-unrelated.service)" \
        "MainPID of demo-unrelated"
    assert_no_line "$out" 'demo-unrelated' "output"

    assert_eq "${pid[demo-denied.service]}" "$(e2e_unit_pid "$m" demo-denied.service)" \
        "MainPID of demo-denied"
    assert_line "$out" '^demo-denied\.service +skip +\(denied by admin: /etc/restart-stale/demo-denied\.service\)' "output"
    assert_contains "$(e2e_maps "$m" "${pid[demo-denied.service]}")" "libdemo.so.1 (deleted)" \
        "maps of demo-denied (still the old library)"

    assert_eq "${pid[t-refuse.service]}" "$(e2e_unit_pid "$m" t-refuse.service)" "MainPID of t-refuse"
    assert_line "$out" '^restart-stale: t-refuse\.service: not restarting: .*RefuseManualStop=yes' "output"

    assert_eq "${pid[$acc]}" "$(e2e_unit_pid "$m" "$acc")" "MainPID of $acc"
    assert_eq active "$(e2e_in "$m" systemctl show -p ActiveState --value "$acc")" "state of $acc"
    assert_line "$out" "^restart-stale: ${acc//./\\.}: not restarting: per-connection instance of t-acc\\.socket \\(Accept=yes\\)" "output"

    assert_eq "${pid[t-leftover.service]}" "$(e2e_unit_pid "$m" t-leftover.service)" "MainPID of t-leftover"
    assert_eq "$child" "$(leftover_child "$m")" "leftover child of t-leftover"
    assert_line "$out" "t-leftover\\.service: not restarting: leftover processes need attention: pid $child " "output"

    assert_line "$out" '^restart-stale: error: t-fail\.service: restart failed' "output"
    assert_eq failed "$(e2e_in "$m" systemctl show -p ActiveState --value t-fail.service)" "state of t-fail"
    assert_line "$out" '^restart-stale: summary: 1 restarted and verified clean, 1 failed' "output"

    # ---- again: the leftover is reported again, and still not restarted;
    # the JSON of a restart run carries each unit's result.
    run_tool "$m" --json
    printf '%s\n' "$out" | e2e_show_log
    e2e_log "second run exited $rc"
    assert_contains "$out" '"outcome":"skipped","result":"leftover-processes","unit":"t-leftover.service"}' \
        "second run JSON"
    assert_contains "$out" '"outcome":"skipped","result":"refuses-manual-stop","unit":"t-refuse.service"}' \
        "second run JSON"
    assert_contains "$out" '"mode":"restart"' "second run JSON"
    assert_ne 4 "$rc" "exit status of the second run (nothing failed)"
    assert_no_line "$out" ': restarting ' "second run output"
    assert_line "$out" "t-leftover\\.service: not restarting: leftover processes need attention: pid $child " "second run output"
    assert_eq "${pid[t-leftover.service]}" "$(e2e_unit_pid "$m" t-leftover.service)" "MainPID of t-leftover after two runs"
    assert_eq "$child" "$(leftover_child "$m")" "leftover child of t-leftover after two runs"
    assert_eq "$new" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed after the second run"

    remove_t_units "$m"
}
e2e_test_main t
