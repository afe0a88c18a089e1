#!/usr/bin/env bash
# A hostile local user gains nothing (issue 22, "Proof", the e2e test).
# User alice (uid 2001) has a crontab entry, so Debian's cron (from the
# archive, e2e_archive_install) starts her processes in cron.service, and
# cron.service is allowed by policy: a restart of it could happen, and the
# test proves that none does. Her crontab's job, at the next minute,
# starts every attack at once and leaves them running:
#   - perl -Ilib k.pl, whose loads (never run, `if (0) { require ... }`,
#     for restart-stale's parser) are lib/K.pm -> /proc/kmsg, lib/T.pm ->
#     a FIFO, lib/Q.pm a hard link of that FIFO and require "/proc/kmsg".
#     A writer blocks opening the FIFO ("trap"): if anything opens it for
#     reading, the writer goes on and leaves a marker file;
#   - a Perl process with 500 modules on `-I.` that another process swaps,
#     over and over, with links to the trap FIFO (renameat2 with
#     RENAME_EXCHANGE; a user cannot mknod a device node);
#   - a 54 KB Perl script of 2,000 `use lib` + 2,000 `use` lines, every
#     module real (`1;`), so perl really loads them and keeps running;
#   - a copy of sleep in ~/bin, running, then deleted and replaced (a
#     file the user controls, stale);
#   - `unshare -Urm` (when the kernel lets a user have a user namespace;
#     else a printed note): a tmpfs over /opt and a copy of sleep there,
#     running, then replaced (another root's copy, stale);
#   - the Prometheus textfile: Debian's textfile directory exists and is
#     alice's (as if node_exporter's user owned it), with links at the
#     textfile's name and at 1,000 temporary names of the old scheme
#     (.restart-stale.prom.PID.tmp) to a root-owned 0600 file; and the
#     same links in a 1777 directory that `status --textfile` is pointed
#     at.
# Then the real upgrade, libdemo1 1.0 -> 2.0 with apt-get. Checked: apt
# exits 0; the finish unit has TimeoutStartUSec=20min (seen while it
# runs), ends in bounded time (at most 120 s, measured) and successfully;
# demo-allowed is restarted onto libdemo 2.0; cron.service keeps its
# MainPID and systemd logs no stop or start of it, and all of alice's
# processes are still there; `restart-stale -a -n --json` reports
# cron.service skipped as report-only (a user's file, another root's
# copy), and says the 2,000-`use lib` walk was cut short; a real
# `restart-stale -a` leaves cron.service alone too. Nothing outside the
# tool's own state changed: the root-owned file (content, mode, mtime),
# the links and the FIFO are as they were, the FIFO was never opened, and
# both textfile directories were refused with a warning naming them.
# Whether /proc/kmsg was read cannot be told from outside (it is a
# stream; dmesg's view differs in the container): the unit and live tests
# prove that one (tests/live_safe_open.rs).
# e2e: modes v2
# (cgroup v1 adds nothing: what is attacked is the walk, the plan's rule
# for users' files and the writes, none of which reads the cgroup mode;
# cron.service's processes are found in v1 by 20 and 40.)
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

USER_NAME=alice
USER_UID=2001
HOME_DIR=/home/$USER_NAME
CRON=cron.service
SECRET=/root/e2e-secret
PROM_DIR=/var/lib/prometheus/node-exporter
OPEN_DIR=/tmp/e2e-prom
# What each launched attack is called in ~/pids (the userns one only when
# unprivileged user namespaces work).
ATTACKS=(trap kmsg flipmods flipper big mapped)

# alice_setup NAME: alice's files, made as alice (see the header).
alice_setup() {
    e2e_in "$1" runuser -u "$USER_NAME" -- env HOME="$HOME_DIR" sh -eu -s <<'EOF'
cd "$HOME"
mkdir -p lib flip big bin pids
mkfifo trap
ln -s /proc/kmsg lib/K.pm
ln -s "$HOME/trap" lib/T.pm
ln trap lib/Q.pm
cat >k.pl <<'PL'
# Never run: these loads are for restart-stale's parser only.
if (0) { require K; require T; require Q; require "/proc/kmsg"; }
sleep 1 while 1;
PL
perl -e '
    for my $i (1 .. 500) {
        open my $f, ">", "flip/F$i.pm" or die "flip/F$i.pm: $!";
        print $f "1;\n";
        close $f;
        symlink "$ENV{HOME}/trap", "flip/L$i.pm" or die "flip/L$i.pm: $!";
    }
    open my $s, ">", "flip/f.pl" or die $!;
    print $s "if (0) {\n", (map { "require F$_;\n" } 1 .. 500), "}\nsleep 1 while 1;\n";
    close $s;
    for my $i (1 .. 2000) {
        mkdir "big/d$i" or die "big/d$i: $!";
        open my $f, ">", "big/d$i/M$i.pm" or die $!;
        print $f "1;\n";
        close $f;
    }
    open my $b, ">", "big/big.pl" or die $!;
    print $b map({ qq{use lib "d$_";\nuse M$_;\n} } 1 .. 2000), "sleep 1 while 1;\n";
    close $b;'
cat >flipper.pl <<'PL'
# Swaps each module with a link to the trap FIFO, for ever. $nr is
# renameat2's number on this machine (0: none known, three renames).
my $nr = shift;
chdir "$ENV{HOME}/flip" or die "flip: $!";
my $rounds = 0;
while (1) {
    for my $i (1 .. 500) {
        if ($nr) {
            # AT_FDCWD, RENAME_EXCHANGE
            syscall($nr, -100, "F$i.pm", -100, "L$i.pm", 2) == 0 or die "renameat2: $!";
        } else {
            rename "F$i.pm", "x" and rename "L$i.pm", "F$i.pm" and rename "x", "L$i.pm"
                or die "rename: $!";
        }
    }
    if (++$rounds == 10) {
        open my $log, ">", "$ENV{HOME}/flip.log" or die $!;
        print $log "flipping: 5000 exchanges\n";
        close $log;
    }
    select undef, undef, undef, 0.01;
}
PL
cat >attack.sh <<'SH'
#!/bin/sh
# Run by alice's crontab every minute; acts once.
mkdir "$HOME/started" 2>/dev/null || exit 0
exec </dev/null >"$HOME/launch.log" 2>&1
cd "$HOME"
pid() { echo "$2" >"$HOME/pids/$1"; }
sh -c 'echo opened >"$HOME/trap" && touch "$HOME/trap-opened"' &
pid trap $!
perl -Ilib k.pl &
pid kmsg $!
(cd flip && exec perl -I. f.pl) &
pid flipmods $!
case $(uname -m) in x86_64) nr=316 ;; aarch64) nr=276 ;; *) nr=0 ;; esac
perl "$HOME/flipper.pl" "$nr" &
pid flipper $!
(cd big && exec perl big.pl) &
pid big $!
cp /bin/sleep bin/e2e-sleep
bin/e2e-sleep infinity &
pid mapped $!
sleep 1
rm bin/e2e-sleep
cp /bin/sleep bin/e2e-sleep
if unshare -Urm true 2>"$HOME/userns-unavailable"; then
    rm -f "$HOME/userns-unavailable"
    unshare -Urm sh -c 'mount -t tmpfs tmpfs /opt && cp /bin/sleep /opt/e2e-sleep && {
        /opt/e2e-sleep infinity &
        echo $! >"$HOME/pids/userns"
        sleep 1
        rm /opt/e2e-sleep
        cp /bin/sleep /opt/e2e-sleep
        touch "$HOME/userns-ready"
        wait
    }' &
    i=0
    while [ ! -e "$HOME/userns-ready" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
fi
touch "$HOME/ready"
SH
chmod 0755 attack.sh
EOF
}

# wait_ready NAME: until alice's crontab job has started everything (cron
# runs it at the next minute).
wait_ready() {
    local i
    for ((i = 0; i < 900; i++)); do
        e2e_in "$1" test -e "$HOME_DIR/ready" && return 0
        sleep 0.1
    done
    e2e_in "$1" cat "$HOME_DIR/launch.log" >&2 || true
    fail "alice's crontab job did not start the attacks in 90 s"
}

# alice_pids NAME: every process of alice's, one per line.
alice_pids() {
    e2e_in "$1" sh -c "for p in /proc/[0-9]*; do
        [ \"\$(stat -c %u \$p 2>/dev/null)\" = $USER_UID ] && echo \${p#/proc/}; done; true"
}

# fingerprint NAME: what must not change outside the tool's own state.
fingerprint() {
    e2e_in "$1" sh -c "stat -c '%n %F %a %u %s %Y' $SECRET $HOME_DIR/trap $HOME_DIR/lib/Q.pm &&
        sha256sum $SECRET &&
        for l in $HOME_DIR/lib/K.pm $HOME_DIR/lib/T.pm $PROM_DIR/restart-stale.prom $OPEN_DIR/restart-stale.prom; do
            printf '%s -> %s\n' \$l \"\$(readlink \$l)\"; done &&
        ls -A $PROM_DIR $OPEN_DIR | sort | sha256sum"
}

# plant_links NAME DIR: as alice, links to the secret at the textfile's
# name and the old scheme's temporary names for the next 1,000 PIDs.
plant_links() {
    # shellcheck disable=SC2016 # expanded by alice's shell
    e2e_in "$1" runuser -u "$USER_NAME" -- sh -eu -c '
        read -r _ _ _ _ last </proc/loadavg
        ln -s "$2" "$1/restart-stale.prom"
        n=0
        while [ $n -lt 1000 ]; do
            ln -s "$2" "$1/.restart-stale.prom.$((last + n)).tmp"
            n=$((n + 1))
        done' plant "$2" "$SECRET"
}

# cleanup_alice NAME: end alice's processes (by PID), remove her, her
# crontab, cron and the directories made here.
cleanup_alice() {
    local name=$1 st i pids
    e2e_in "$name" crontab -r -u "$USER_NAME" 2>/dev/null || true
    # Until they are gone: a killed process leaves /proc when reaped.
    for ((i = 0; i < 100; i++)); do
        pids=$(alice_pids "$name")
        [[ -z $pids ]] && break
        # The shell's kill: trixie's minbase has no kill(1) (procps).
        # shellcheck disable=SC2086 # one PID per word
        e2e_in "$name" sh -c 'kill -KILL "$@"' kill $pids 2>/dev/null || true
        sleep 0.1
    done
    [[ -z $pids ]] || fail "alice's processes are left: $pids"
    e2e_in "$name" sh -c "id -u $USER_NAME >/dev/null 2>&1 && userdel -r $USER_NAME 2>/dev/null; true"
    e2e_in "$name" rm -rf /var/lib/prometheus "$OPEN_DIR" "$SECRET"
    e2e_policy "$name" "$CRON" none
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    st=$(e2e_in "$name" dpkg-query -W -f='${db:Status-Abbrev}' cron 2>/dev/null) || st=
    if [[ $st == [ihr][ic]* ]]; then
        e2e_archive_purge "$name" cron cron
    fi
}

t() {
    local m=$1 a i cron_pid allowed_new cursor log rc t0 ms limit_file poller
    local json err doc code fp_before fp_after userns=yes out textlog
    local -A pid apid

    e2e_step "clean up a previous run" cleanup_alice "$m"
    e2e_apt_setup "$m" pid
    e2e_step "install cron from the archive" e2e_archive_install "$m" cron cron
    e2e_wait_apt_finish "$m"
    e2e_wait_active "$m" "$CRON"
    e2e_policy "$m" "$CRON" allow

    e2e_in "$m" useradd -m -u "$USER_UID" -s /bin/sh "$USER_NAME"
    e2e_in "$m" sh -c "umask 077 && printf 'e2e secret\n' >$SECRET"
    e2e_in "$m" touch -d '2020-01-01 00:00:00' "$SECRET"
    e2e_in "$m" install -d -m 0755 -o "$USER_NAME" -g "$USER_NAME" "$PROM_DIR"
    e2e_in "$m" install -d -m 1777 "$OPEN_DIR"
    plant_links "$m" "$PROM_DIR"
    plant_links "$m" "$OPEN_DIR"
    e2e_step "alice's files" alice_setup "$m"
    printf '* * * * * %s/attack.sh >/dev/null 2>&1\n' "$HOME_DIR" |
        e2e_in "$m" crontab -u "$USER_NAME" -
    e2e_step "wait for alice's crontab job" wait_ready "$m"
    e2e_in "$m" cat "$HOME_DIR/launch.log" | e2e_show_log launch
    if e2e_in "$m" test -e "$HOME_DIR/userns-unavailable"; then
        userns=no
        e2e_log "note: no unprivileged user namespace in the container ($(e2e_in "$m" cat "$HOME_DIR/userns-unavailable")); the /opt tmpfs attack is left out"
    else
        ATTACKS+=(userns)
    fi
    cron_pid=$(e2e_unit_pid "$m" "$CRON")
    for a in "${ATTACKS[@]}"; do
        apid[$a]=$(e2e_in "$m" cat "$HOME_DIR/pids/$a")
        assert_eq "/system.slice/$CRON" "$(e2e_in "$m" sed -n 's/^0:://p' "/proc/${apid[$a]}/cgroup")" "cgroup of alice's $a process"
        assert_eq "$USER_UID" "$(e2e_in "$m" stat -c %u "/proc/${apid[$a]}")" "owner of the $a process"
    done
    assert_contains "$(e2e_maps "$m" "${apid[mapped]}")" "$HOME_DIR/bin/e2e-sleep (deleted)" "maps of the mapped process"
    if [[ $userns == yes ]]; then
        assert_contains "$(e2e_maps "$m" "${apid[userns]}")" "/opt/e2e-sleep (deleted)" "maps of the userns process"
    fi
    assert_eq 4001 "$(e2e_in "$m" sh -c "ls /proc/${apid[big]}/maps >/dev/null && wc -l <$HOME_DIR/big/big.pl")" \
        "lines of big.pl (2,000 use lib, 2,000 use, the loop)"
    e2e_log "big.pl: $(e2e_in "$m" stat -c %s "$HOME_DIR/big/big.pl") bytes"
    for ((i = 0; i < 100; i++)); do
        e2e_in "$m" test -e "$HOME_DIR/flip.log" && break
        sleep 0.1
    done
    assert_contains "$(e2e_in "$m" cat "$HOME_DIR/flip.log" 2>&1)" "flipping" "the flipper's log"
    fp_before=$(fingerprint "$m")
    printf '%s\n' "$fp_before" | e2e_show_log before

    # The real upgrade, with a poller beside it that reads the finish
    # unit's time limit while it runs (it is collected when it ends).
    sleep 1
    e2e_publish "$m" v2
    cursor=$(e2e_journal_cursor "$m")
    limit_file=$(mktemp "$E2E_WORK_DIR/limit.XXXXXX")
    E2E_OWNED_DIRS+=("$limit_file")
    (
        for ((i = 0; i < 1200; i++)); do
            out=$(e2e_in "$m" systemctl show -p ActiveState -p TimeoutStartUSec "$E2E_FINISH_UNIT" 2>/dev/null) || true
            if [[ $out == *ActiveState=activating* || $out == *ActiveState=active* ]]; then
                printf '%s\n' "$out" >"$limit_file"
                exit 0
            fi
            sleep 0.1
        done
    ) &
    poller=$!
    rc=0
    t0=$(e2e_now_ms)
    out=$(e2e_apt "$m" upgrade 2>&1) || rc=$?
    printf '%s\n' "$out" | e2e_show_log apt
    if ((rc != 0)); then
        kill "$poller" 2>/dev/null || true
        fail "apt-get upgrade exited $rc"
    fi
    e2e_log "ok: apt-get upgrade exited 0 after $(($(e2e_now_ms) - t0)) ms"
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    assert_eq 2.0 "$(e2e_in "$m" dpkg-query -W -f='${Version}' libdemo1)" "installed libdemo1"
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m" 120
    ms=$(($(e2e_now_ms) - t0))
    wait "$poller" || true
    e2e_measure "apt-get upgrade and its finish beside alice's attacks: $ms ms"
    assert_line "$(cat "$limit_file")" '^TimeoutStartUSec=20min$' "the finish unit while it ran"

    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | e2e_show_log finish
    assert_line "$log" "systemd\\[1\\]: $E2E_FINISH_UNIT: Deactivated successfully" "finish journal"
    assert_no_line "$log" 'Failed with result|status=[1-9]|timed out|panicked' "finish journal"
    assert_line "$log" 'restart-stale\[[0-9]+\]: demo-allowed\.service: restarted in .*, verified clean$' "finish journal"
    assert_no_line "$log" 'cron\.service +restart|cron\.service: restarted' "finish journal"
    assert_line "$log" "refusing to write in ${PROM_DIR//./\\.}: owned by uid $USER_UID" "finish journal"

    allowed_new=$(e2e_unit_pid "$m" demo-allowed.service)
    assert_ne "${pid[demo-allowed.service]}" "$allowed_new" "MainPID of demo-allowed"
    assert_contains "$(e2e_maps "$m" "$allowed_new")" libdemo.so.1 "maps of the new demo-allowed"
    assert_not_contains "$(e2e_maps "$m" "$allowed_new")" "(deleted)" "maps of the new demo-allowed"
    assert_eq "${pid[demo-denied.service]}" "$(e2e_unit_pid "$m" demo-denied.service)" "MainPID of demo-denied"
    assert_eq "$cron_pid" "$(e2e_unit_pid "$m" "$CRON")" "MainPID of cron.service after the upgrade"
    for a in "${ATTACKS[@]}"; do
        e2e_in "$m" test -d "/proc/${apid[$a]}" || fail "alice's $a process ${apid[$a]} is gone"
    done

    # Without a transaction, all units considered: cron.service's stale
    # files are all alice's, so it is skipped, never planned.
    err=$(mktemp "$E2E_WORK_DIR/err.XXXXXX")
    E2E_OWNED_DIRS+=("$err")
    rc=0
    t0=$(e2e_now_ms)
    json=$(e2e_in "$m" restart-stale -a -n --json 2>"$err") || rc=$?
    e2e_measure "restart-stale -a -n --json beside alice's attacks: $(($(e2e_now_ms) - t0)) ms"
    e2e_show_log "-a -n stderr" <"$err"
    ((rc == 0 || rc == 3)) || fail "restart-stale -a -n --json exited $rc"
    # shellcheck disable=SC2001 # one line per unit: a newline before each
    doc=$(sed 's/{"action":/\n&/g' <<<"$json" | grep -F '"unit":"cron.service"}') ||
        fail "restart-stale -a -n --json names no cron.service"
    code=$(grep -oE '"reason":"[a-z-]+","reason_text":"[^"]*","unit":"cron\.service"}' <<<"$doc") || code=
    e2e_log "cron.service: $code"
    assert_line "$doc" '^\{"action":"skip",' "cron.service in -a -n --json"
    assert_line "$code" '"reason":"(user-files-only|other-root-only)","reason_text":"[^"]*(users control files|own copies)' \
        "cron.service's reason"
    assert_contains "$doc" "\"path\":\"$HOME_DIR/bin/e2e-sleep\"" "cron.service in -a -n --json"
    if [[ $userns == yes ]]; then
        assert_contains "$doc" '"path":"/opt/e2e-sleep"' "cron.service in -a -n --json"
    fi
    assert_line "$(cat "$err")" "pid ${apid[big]}: walk of its Perl imports cut short: " "-a -n stderr"
    assert_no_line "$(cat "$err")" 'panicked|/proc/kmsg' "-a -n stderr"

    # A real run, all units considered: still no restart of cron.service.
    cursor=$(e2e_journal_cursor "$m")
    rc=0
    out=$(e2e_in "$m" restart-stale -a 2>&1) || rc=$?
    # Its plan lists 500 imports of the flipped modules on one line.
    printf '%s\n' "$out" | cut -c1-300 | e2e_show_log "-a"
    e2e_log "restart-stale -a exited $rc"
    assert_line "$out" '^cron\.service +skip +\(stale files lie only where users control files' "restart-stale -a"
    assert_no_line "$out" 'cron\.service +restart|cron\.service: restarted' "restart-stale -a"
    assert_eq "$cron_pid" "$(e2e_unit_pid "$m" "$CRON")" "MainPID of cron.service after restart-stale -a"
    assert_no_line "$(e2e_journal "$m" "$cursor" -u "$CRON")" \
        "systemd\\[1\\]: (Stopping|Stopped|Starting|Started) cron\\.service" "cron.service's journal"

    # The textfile pointed at a 1777 directory with alice's links in it.
    rc=0
    textlog=$(e2e_in "$m" restart-stale status --textfile "$OPEN_DIR/restart-stale.prom" 2>&1 >/dev/null) || rc=$?
    ((rc == 0 || rc == 3)) || fail "restart-stale status exited $rc"
    assert_line "$textlog" "refusing to write in ${OPEN_DIR//./\\.}: writable by group or others" "status --textfile stderr"

    fp_after=$(fingerprint "$m")
    assert_eq "$fp_before" "$fp_after" "the secret, links, FIFO and textfile directories"
    assert_eq "e2e secret" "$(e2e_in "$m" cat "$SECRET")" "content of $SECRET"
    e2e_in "$m" test ! -e "$HOME_DIR/trap-opened" || fail "the trap FIFO was opened for reading"
    e2e_in "$m" test -p "$HOME_DIR/trap" || fail "$HOME_DIR/trap is no FIFO any more"
    e2e_log "ok: nothing outside the tool's state changed; the trap FIFO was never opened"

    e2e_step "remove alice and cron" cleanup_alice "$m"
    e2e_in "$m" test ! -e /usr/sbin/cron || fail "cron is still installed after the purge"
}
e2e_test_main t
