#!/usr/bin/env bash
# Debian's own prometheus-node-exporter serves restart-stale's textfile
# (issue 15 part 4). With the package installed from the archive, its
# directory /var/lib/prometheus/node-exporter exists, so the apt hook's run
# writes restart-stale.prom there without any setting. node_exporter,
# started on 127.0.0.1 at a free port with only the textfile collector on
# that directory and as the package's `prometheus` user (the file must be
# readable to it), then serves it:
#   - `node_textfile_scrape_error 0`: it parsed the whole file;
#   - every restart_stale_* sample of the file, with the same labels and
#     value (node_exporter sorts labels and prints floats its own way, so
#     they are compared as numbers, labels sorted);
#   - what the upgrade of libdemo1 did: demo-allowed stale and restarted
#     (units_restarted 1, mode restart), demo-denied stale and skipped as
#     denied;
#   - a later `restart-stale status` run is what the next scrape serves:
#     demo-allowed no longer stale, demo-denied still.
# The package's own unit is never started (a policy-rc.d during the
# install): it would sit in system.slice, where a hook run could find it
# stale. Ours is a transient unit in user.slice, which restart-stale never
# restarts; it is stopped and the package purged at the end.
#
# e2e: modes v2
# (cgroup v1 adds nothing: the textfile and its scrape do not depend on
# the cgroup layout, which 20-apt-upgrade.sh covers for the restarts.)
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

DIR=/var/lib/prometheus/node-exporter
UNIT=e2e-node-exporter.service

# listening M PORT: true if something accepts connections at
# 127.0.0.1:PORT, as seen from M (which shares the host's network).
listening() {
    # shellcheck disable=SC2016 # expanded by the container's bash
    e2e_in "$1" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' port "$2" 2>/dev/null
}

# free_port M: a TCP port nothing listens on at 127.0.0.1.
free_port() {
    local p
    for ((p = 19100; p < 19200; p++)); do
        if ! listening "$1" "$p"; then
            echo "$p"
            return 0
        fi
    done
    fail "no free port in 19100-19199"
}

# scrape M PORT: GET /metrics with bash's /dev/tcp (minbase has no curl
# or python); prints the body, fails unless the status is 200.
scrape() {
    local resp
    # shellcheck disable=SC2016 # expanded by the container's bash
    resp=$(e2e_in "$1" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
        printf "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3' scrape "$2" | tr -d '\r')
    [[ $(head -n 1 <<<"$resp") == "HTTP/1."?" 200 OK" ]] || fail "scrape: $(head -n 1 <<<"$resp")"
    sed '1,/^$/d' <<<"$resp"
}

# samples: stdin's sample lines of restart_stale_* as `name{labels sorted}
# value`, the value as a number, for comparing across formats.
samples() {
    awk '/^restart_stale_/ {
        v = $NF; $NF = ""; sub(/ +$/, "")
        name = $0; labels = ""
        if (i = index($0, "{")) {
            name = substr($0, 1, i - 1)
            n = split(substr($0, i + 1, length($0) - i - 1), l, /",/)
            for (j = 1; j <= n; j++) if (j < n) l[j] = l[j] "\""
            for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++) if (l[b] < l[a]) { t = l[a]; l[a] = l[b]; l[b] = t }
            for (j = 1; j <= n; j++) labels = labels (j > 1 ? "," : "") l[j]
            labels = "{" labels "}"
        }
        printf "%s%s %.17g\n", name, labels, v + 0
    }' | sort
}

# served_matches_file M PORT: every sample of the textfile is served.
served_matches_file() {
    local file served missing
    file=$(e2e_in "$1" cat "$DIR/restart-stale.prom" | samples)
    served=$(scrape "$1" "$2")
    assert_line "$served" '^node_textfile_scrape_error 0$' "served metrics"
    assert_line "$served" "^node_textfile_mtime_seconds\\{file=\"$DIR/restart-stale.prom\"\\} " "served metrics"
    missing=$(comm -23 <(printf '%s\n' "$file") <(samples <<<"$served"))
    [[ -z $missing ]] || fail "samples of the textfile not served as written:"$'\n'"$missing"
    e2e_log "ok: all $(wc -l <<<"$file") restart_stale samples served as written"
    printf '%s\n' "$served"
}

t() {
    local m=$1 port served t0 rc i
    local -A pid
    e2e_apt_setup "$m" pid

    e2e_in "$m" sh -c 'printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    t0=$(e2e_now_ms)
    e2e_step "install prometheus-node-exporter" \
        e2e_archive_install "$m" node-exporter prometheus-node-exporter
    e2e_measure "prometheus-node-exporter install: $(($(e2e_now_ms) - t0)) ms"
    e2e_in "$m" rm -f /usr/sbin/policy-rc.d
    e2e_wait_apt_finish "$m"
    assert_ne active "$(e2e_in "$m" systemctl is-active prometheus-node-exporter.service || true)" \
        "the package's own unit"
    e2e_in "$m" test -d "$DIR" || fail "the package did not create $DIR"

    e2e_publish "$m" v2
    e2e_step "apt-get upgrade" e2e_apt "$m" upgrade
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"
    assert_ne "${pid[demo-allowed.service]}" "$(e2e_unit_pid "$m" demo-allowed.service)" \
        "MainPID of demo-allowed (restarted)"
    assert_eq 644 "$(e2e_in "$m" stat -c %a "$DIR/restart-stale.prom")" "mode of the textfile"

    port=$(free_port "$m")
    e2e_in "$m" systemd-run --quiet --unit="$UNIT" --slice=user.slice -p User=prometheus -- \
        /usr/bin/prometheus-node-exporter --web.listen-address="127.0.0.1:$port" \
        --collector.disable-defaults --collector.textfile --collector.textfile.directory="$DIR"
    t0=$(e2e_now_ms)
    for ((i = 0; i < 100; i++)); do
        listening "$m" "$port" && break
        sleep 0.1
    done
    e2e_measure "node_exporter listening after $(($(e2e_now_ms) - t0)) ms"

    served=$(served_matches_file "$m" "$port")
    assert_line "$served" '^restart_stale_last_run_info\{mode="restart"\} 1$' "served after the hook"
    assert_line "$served" '^restart_stale_units_restarted 1$' "served after the hook"
    assert_line "$served" '^restart_stale_units_failed 0$' "served after the hook"
    assert_line "$served" '^restart_stale_stale_unit\{action="skip",reason="denied-by-admin",unit="demo-denied\.service"\} 1$' \
        "served after the hook"
    # The hook's run reports the plan it acted on: demo-allowed was stale
    # and restarted.
    assert_line "$served" '^restart_stale_stale_unit\{action="restart",reason="allowed-by-admin",unit="demo-allowed\.service"\} 1$' \
        "served after the hook"
    assert_line "$served" '^restart_stale_last_run_outcome\{outcome="done"\} 1$' "served after the hook"

    rc=0
    e2e_in "$m" restart-stale status >/dev/null || rc=$?
    ((rc == 0 || rc == 3)) || fail "restart-stale status exited $rc"
    served=$(served_matches_file "$m" "$port")
    assert_line "$served" '^restart_stale_last_run_info\{mode="status"\} 1$' "served after status"
    assert_line "$served" '^restart_stale_units_restarted 0$' "served after status"
    assert_no_line "$served" '^restart_stale_stale_unit\{.*unit="demo-allowed\.service"' "served after status"
    assert_line "$served" '^restart_stale_stale_unit\{action="skip",reason="denied-by-admin",unit="demo-denied\.service"\} 1$' \
        "served after status"

    e2e_in "$m" systemctl stop "$UNIT"
    e2e_in "$m" dpkg --purge prometheus-node-exporter >/dev/null
    e2e_in "$m" rm -rf /var/lib/prometheus
}
e2e_test_main t
