#!/usr/bin/env bash
# A real zypper commit (Debian's zypper and libzypp) runs restart-stale's
# commit plugin: the plugin answers every frame, records the commit at
# COMMITEND and starts restart-stale-zypper.service, which restarts the
# allowed, affected unit exactly once, after zypper exited; zypper still
# succeeds when the plugin cannot run restart-stale.
#
# restart-stale comes from $RESTART_STALE_DEB, which ships the plugin in
# /usr/lib/zypp/plugins/commit/ (Debian packages zypper). Debian's zypper,
# rpm and createrepo-c are installed from the archive (lib-zypper.sh); the
# demo rpms and their rpm-md repo are lib-rpm.sh's, as in 90-dnf.sh. zypper
# knows only that repo. libdemo1 and demo-allowed go 1.0 → 2.0 with
# `zypper update`: demo-allowed (allowed, maps libdemo) must restart;
# demo-denied (denied, maps libdemo) and demo-unrelated (allowed, does not
# map libdemo) must not. The update runs with ZYPP_PLUGIN_DEBUG, so libzypp
# logs the frames it sent and the answers it read: the test checks that
# exchange and prints it (the source of tests/fixtures/zypper/).
#
# Then a commit whose rpm phase lasts over 30 s (demo-slow, whose %post
# sleeps 35 s, with libdemo1 going back to 1.0): libzypp keeps the plugin
# from PLUGINBEGIN to COMMITEND across it, longer than the hooks' 25 s
# limit, which times each frame's work only; the commit is still recorded
# and demo-allowed restarted once, after the rpm phase.
#
# cgroup v1 adds nothing here: the manager adapter and the finish step do
# not look at cgroups, and 10/20 cover the restart itself in both modes.
# e2e: modes v2
# e2e: fresh-machine
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lib-rpm.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib-rpm.sh"
# shellcheck source=../lib-zypper.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib-zypper.sh"

UNITS=(demo-allowed.service demo-denied.service demo-unrelated.service)
PLUGIN=/usr/lib/zypp/plugins/commit/restart-stale
FINISH=restart-stale-zypper.service
CAPTURE=/var/tmp/e2e-zypper.frames
CAPTURE_PLUGIN=/usr/lib/zypp/plugins/commit/zz-e2e-capture

# The journal since a cursor is read whole and filtered here. (It was the
# workaround for journalctl 252 dropping the first entry a match selects
# after --after-cursor; e2e_journal_cursor now avoids that for every test.)

# finish_journal M CURSOR: the lines restart-stale logged since CURSOR (the
# plugin logs to libzypp, so these are the finish step's), once its last
# line ("summary: ...") is in (up to 10 s: the journal lags behind).
finish_journal() {
    local m=$1 cursor=$2 i log
    for ((i = 0; i < 100; i++)); do
        log=$(e2e_journal "$m" "$cursor" | grep -E ' restart-stale\[[0-9]+\]: ' || true)
        [[ $log == *"summary: "* ]] && break
        sleep 0.1
    done
    printf '%s\n' "$log"
}

# us TIMESTAMP: seconds.microseconds -> integer microseconds.
us() {
    local s=${1%.*} f=${1#*.}
    echo $((s * 1000000 + 10#$f))
}

# slow_commit M: a commit with a 35-s rpm phase (demo-slow's %post)
# that downgrades libdemo1 to 1.0: every frame answered, one finish, one
# restart of demo-allowed, after the %post ended.
slow_commit() {
    local m=$1 out rootfs cursor frames journal alog n ms t0 t_restart t_post old_pid
    rootfs=$(_e2e_state "$m" rootfs)
    # One file: rpmbuild refuses an empty %files list.
    mkdir -p "$rootfs/srv/rpmbuild/stage/slow/usr/share/demo-slow"
    echo "a package whose %post takes 35 s" >"$rootfs/srv/rpmbuild/stage/slow/usr/share/demo-slow/README"
    e2e_in "$m" rpmbuild -bb --quiet \
        --define "_topdir /srv/rpmbuild/top" --define "_rpmdir /srv/rpms/slow" \
        --define "__os_install_post %{nil}" --define "debug_package %{nil}" \
        --define "pkgname demo-slow" --define "ver 1.0" --define "post_sleep 35" \
        --define "stage /srv/rpmbuild/stage/slow" /srv/rpmbuild/demo.spec >/dev/null
    cp "$rootfs"/srv/rpms/slow/*/demo-slow-1.0-1.*.rpm "$rootfs/srv/rpmrepo/"
    e2e_in "$m" createrepo_c -q /srv/rpmrepo
    old_pid=$(e2e_unit_pid "$m" demo-allowed.service)
    e2e_in "$m" rm -f "$E2E_ZYPPER_LOG" /var/tmp/e2e-demo-slow.post-end
    cursor=$(e2e_journal_cursor "$m")
    t0=$(e2e_now_ms)
    out=$(E2E_ZYPPER_ENV=ZYPP_PLUGIN_DEBUG=1 e2e_step "zypper install (35-s %post)" \
        e2e_zypper "$m" install --oldpackage libdemo1=1.0 demo-slow 2>&1) ||
        fail "zypper install of demo-slow failed: $out"
    ms=$(($(e2e_now_ms) - t0))
    printf '%s\n' "$out" | e2e_show_log zypper
    # The premise: the commit outlasted the hooks' 25 s.
    ((ms > 30000)) || fail "zypper took $ms ms: demo-slow's %post did not run its 35 s"
    e2e_measure "zypper commit with a 35-s %post took $ms ms"
    assert_eq "1.0 1.0" "$(e2e_zypper_rpm "$m" -q --qf '%{VERSION} ' libdemo1 demo-slow | sed 's/ $//')" \
        "installed libdemo1 and demo-slow"
    frames=$(e2e_zypper_frames "$m")
    printf '%s\n' "$frames" | e2e_show_log frames
    assert_eq 5 "$(grep -cE '^< ACK$' <<<"$frames" || true)" "ACKs libzypp read in the slow commit"
    assert_no_line "$frames" '^< (ERROR|_ENOMETHOD)' "answers libzypp read in the slow commit"
    e2e_step "wait for $FINISH (slow commit)" e2e_wait_finish "$m" "$FINISH" 60 "$cursor"
    n=$(e2e_journal "$m" "$cursor" | grep -cE "systemd\\[1\\]: Starting $FINISH" || true)
    assert_eq 1 "$n" "starts of $FINISH (slow commit)"
    assert_no_line "$(e2e_journal "$m" "$cursor")" 'gave up after' "journal of the slow commit"
    journal=$(finish_journal "$m" "$cursor")
    printf '%s\n' "$journal" | e2e_show_log finish
    assert_line "$journal" 'zypper transaction: .*libdemo1\.x86_64 2\.0-1 → 1\.0-1' "finish's summary (slow commit)"
    assert_no_line "$journal" 'ended before the transaction did' "finish's journal (the final record, not the held one)"
    n=$(grep -c 'demo-allowed\.service: restarting' <<<"$journal" || true)
    assert_eq 1 "$n" "restarts of demo-allowed by restart-stale (slow commit)"
    alog=$(e2e_journal "$m" "$cursor" | grep -E 'systemd\[1\]: .*demo-allowed\.service|demo-allowed\[[0-9]+\]: ' || true)
    assert_eq 1 "$(grep -cE 'systemd\[1\]: Started demo-allowed\.service' <<<"$alog" || true)" \
        "starts of demo-allowed (slow commit)"
    assert_line "$alog" 'using libdemo 1\.0$' "demo-allowed journal (libdemo 1.0 again)"
    assert_ne "$old_pid" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed (slow commit)"
    t_restart=$(us "$(grep -E -m 1 'demo-allowed\.service: restarting' <<<"$journal" | cut -d' ' -f1)")
    t_post=$(us "$(e2e_in "$m" cat /var/tmp/e2e-demo-slow.post-end)")
    ((t_restart > t_post)) || fail "restart ($t_restart) before demo-slow's %post ended ($t_post)"
    e2e_log "ok: restart at $t_restart us, after demo-slow's %post ended"
}

t() {
    local m=$1 out journal alog frames n t_restart t_end cursor rootfs
    local -A pid

    e2e_demo_reset "$m"
    e2e_step "install restart-stale (.deb)" e2e_require_tool "$m"
    assert_line "$(e2e_in "$m" dpkg -L restart-stale)" "^${PLUGIN//./\\.}\$" "dpkg -L restart-stale"
    assert_eq "-rwxr-xr-x root root" "$(e2e_in "$m" stat -c '%A %U %G' "$PLUGIN")" "mode of $PLUGIN"
    e2e_step "install zypper, rpm, createrepo-c" e2e_zypper_tools "$m"
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    e2e_log "versions: $(e2e_in "$m" dpkg-query -W -f='${Package} ${Version}, ' zypper 'libzypp[0-9]*' rpm)"
    e2e_step "build demo rpms" e2e_rpm_demo_build "$m"

    e2e_rpm_publish "$m" v1
    cursor=$(e2e_journal_cursor "$m")
    out=$(e2e_step "zypper install (1.0)" e2e_zypper "$m" install "${E2E_RPM_DEMO[@]}" 2>&1) ||
        fail "zypper install failed: $out"
    printf '%s\n' "$out" | e2e_show_log zypper
    e2e_step "wait for $FINISH (install)" e2e_wait_finish "$m" "$FINISH" 60 "$cursor"
    e2e_start_demo_units "$m" pid "${UNITS[@]}"

    e2e_rpm_publish "$m" v2 libdemo1 demo-allowed
    e2e_in "$m" rm -f "$E2E_ZYPPER_LOG" "$CAPTURE" "$CAPTURE.out"
    # A second plugin copies the bytes libzypp sends (the source of
    # tests/zypper/); it answers through a suspended restart-stale, which
    # records nothing, so only the packaged plugin acts.
    e2e_in "$m" sh -c "cat >$CAPTURE_PLUGIN && chmod 755 $CAPTURE_PLUGIN" <<EOF
#!/bin/sh
tee $CAPTURE | RESTART_STALE_SUSPEND=1 /usr/bin/restart-stale zypper-hook | tee $CAPTURE.out
EOF
    cursor=$(e2e_journal_cursor "$m")
    out=$(E2E_ZYPPER_ENV=ZYPP_PLUGIN_DEBUG=1 e2e_step "zypper update (2.0)" e2e_zypper "$m" update 2>&1) ||
        fail "zypper update failed: $out"
    printf '%s\n' "$out" | e2e_show_log zypper
    # What libzypp sent (>) and read (<): the plugin's side of the exchange.
    frames=$(e2e_zypper_frames "$m")
    printf '%s\n' "$frames" | e2e_show_log frames
    # Two plugins (ours and the capturing one) get every frame.
    for f in PLUGINBEGIN COMMITBEGIN COMMITEND PLUGINEND _DISCONNECT; do
        assert_eq 2 "$(grep -cE "^> $f\$" <<<"$frames" || true)" "$f frames libzypp sent"
    done
    assert_eq 10 "$(grep -cE '^< ACK$' <<<"$frames" || true)" "ACKs libzypp read"
    assert_no_line "$frames" '^< (ERROR|_ENOMETHOD)' "answers libzypp read"
    # COMMITEND's body (one JSON member a line): the 2 steps done, twice.
    assert_eq 4 "$(grep -cE '^> "stage": "ok",$' <<<"$frames" || true)" "steps done in COMMITEND"
    rootfs=$(_e2e_state "$m" rootfs)
    assert_eq 5 "$(tr -d '\000' <"$rootfs$CAPTURE.out" | grep -c '^ACK$' || true)" \
        "ACKs of the capturing plugin"
    e2e_in "$m" rm "$CAPTURE_PLUGIN"
    if [[ -n ${E2E_ZYPPER_CAPTURE:-} ]]; then
        cp "$rootfs$CAPTURE" "$E2E_ZYPPER_CAPTURE"
        e2e_log "the frames libzypp sent are in $E2E_ZYPPER_CAPTURE"
    fi
    assert_eq "2.0 2.0" "$(e2e_zypper_rpm "$m" -q --qf '%{VERSION} ' libdemo1 demo-allowed | sed 's/ $//')" \
        "installed libdemo1 and demo-allowed"
    e2e_step "wait for $FINISH" e2e_wait_finish "$m" "$FINISH" 60 "$cursor"

    n=$(e2e_journal "$m" "$cursor" | grep -cE "systemd\\[1\\]: Starting $FINISH" || true)
    assert_eq 1 "$n" "starts of $FINISH"
    journal=$(finish_journal "$m" "$cursor")
    printf '%s\n' "$journal" | e2e_show_log finish
    assert_line "$journal" 'zypper transaction: .*libdemo1\.x86_64 1\.0-1 → 2\.0-1' "finish's summary (the old version from the rpmdb before the commit)"
    n=$(grep -c 'demo-allowed\.service: restarting' <<<"$journal" || true)
    assert_eq 1 "$n" "restarts of demo-allowed by restart-stale"
    alog=$(e2e_journal "$m" "$cursor" | grep -E 'systemd\[1\]: .*demo-allowed\.service|demo-allowed\[[0-9]+\]: ' || true)
    e2e_assert_demo_on_2_0 "$m" "$alog" "${pid[demo-allowed.service]}"
    assert_eq "${pid[demo-denied.service]}" "$(e2e_unit_pid "$m" demo-denied.service)" "MainPID of demo-denied (denied)"
    assert_contains "$(e2e_maps "$m" "${pid[demo-denied.service]}")" "libdemo.so.1 (deleted)" "maps of demo-denied"
    assert_eq "${pid[demo-unrelated.service]}" "$(e2e_unit_pid "$m" demo-unrelated.service)" "MainPID of demo-unrelated (unaffected)"
    t_restart=$(us "$(grep -E -m 1 'demo-allowed\.service: restarting' <<<"$journal" | cut -d' ' -f1)")
    # The end of the transaction: the capturing plugin's last answer, to
    # libzypp's _DISCONNECT, written the moment that frame came (the time
    # its output file was last written; libzypp may kill a plugin after
    # that, so the plugin cannot note the time itself). A mark taken
    # after zypper's unit ended would come too late: the finish acts once
    # zypper's process has exited, before systemd has even reaped it.
    t_end=$(us "$(e2e_in "$m" stat -c %.6Y "$CAPTURE.out")")
    ((t_restart > t_end)) || fail "restart ($t_restart) before libzypp let its plugins go ($t_end)"
    e2e_log "ok: restart at $t_restart us, after libzypp let its plugins go ($t_end)"
    e2e_measure "zypper-hook finish acted $(((t_restart - t_end) / 1000)) ms after libzypp let its plugins go"

    slow_commit "$m"

    # The plugin cannot run the binary: zypper must still succeed.
    pid[demo-allowed.service]=$(e2e_unit_pid "$m" demo-allowed.service)
    e2e_rpm_publish "$m" v2 libdemo1 demo-allowed demo-denied
    e2e_in "$m" mv /usr/bin/restart-stale /usr/bin/restart-stale.away
    out=$(e2e_step "zypper update without the binary" e2e_zypper "$m" update 2>&1) || {
        e2e_in "$m" mv /usr/bin/restart-stale.away /usr/bin/restart-stale
        fail "zypper failed when the plugin could not run restart-stale: $out"
    }
    e2e_in "$m" mv /usr/bin/restart-stale.away /usr/bin/restart-stale
    printf '%s\n' "$out" | e2e_show_log zypper
    assert_eq 2.0 "$(e2e_zypper_rpm "$m" -q --qf '%{VERSION}' demo-denied)" "demo-denied after the update"
    assert_eq "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" "MainPID of demo-allowed (nothing ran)"
    assert_eq "${pid[demo-denied.service]}" "$(e2e_unit_pid "$m" demo-denied.service)" "MainPID of demo-denied (nothing ran)"

    e2e_in "$m" systemctl stop "${UNITS[@]}"
}
e2e_test_main t
