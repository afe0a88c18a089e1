#!/usr/bin/env bash
# One restart per transaction, after its last dpkg run (issue 4, "Done
# when" 2).
#
# A frontend such as unattended-upgrades holds the dpkg frontend lock
# (/var/lib/dpkg/lock-frontend) for its whole run and commits in several
# parts, so apt's Pre-Install-Pkgs and Post-Invoke hooks run once per part.
# This test does the same with a small perl program (perl-base is in
# minbase): it takes the lock with fcntl(2), as apt does, then runs
#   part 1: apt-get install libdemo1       (1.0 -> 2.0: demo-allowed stale)
#   part 2: apt-get install demo-allowed   (1.0 -> 2.0: its own binary)
# 4 s apart (longer than finish's 2 s quiet period), with Debug::NoLocking
# and DPKG_FRONTEND_LOCKED because the lock is already held, and releases
# the lock at the end.
#
# If restart-stale acted after part 1 it would restart demo-allowed then,
# on the old daemon, and again after part 2. Checked instead:
#   - restart-stale-apt.service started once and acted once, on a record
#     of 2 hook runs naming both packages;
#   - demo-allowed was started exactly once, running daemon 2.0 on
#     libdemo 2.0 (only installed by part 2), new PID, clean maps;
#   - the restart came after part 2 ended and after the lock was released
#     (microsecond timestamps), and not before the last line of dpkg.log.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

MARKS=/run/e2e-apt-once.marks
SESSION=/root/e2e-apt-once.pl

write_session() {
    e2e_in "$1" sh -c "cat >$SESSION"
}

# us TIMESTAMP: seconds.microseconds -> integer microseconds.
us() {
    local s=${1%.*} f=${1#*.}
    echo $((s * 1000000 + 10#$f))
}

# mark NAME: the time the session logged for NAME, in microseconds.
mark() {
    # shellcheck disable=SC2016 # an awk program, not a shell expansion
    us "$(e2e_in "$m" awk -v k="$1" '$1 == k { print $2 }' "$MARKS")"
}

# first_ts LOG ERE: the short-unix timestamp of LOG's first line matching
# ERE, in microseconds.
first_ts() {
    local line
    line=$(grep -E -m 1 -- "$2" <<<"$1") || fail "no line matches /$2/"
    us "${line%% *}"
}

t() {
    local m=$1 old cursor log alog arch n t_restart t_unlock t_run2 last dpkg_s
    arch=$(dpkg --print-architecture)

    e2e_step "reset" e2e_demo_reset "$m"
    e2e_step "install restart-stale" e2e_require_tool "$m"
    e2e_in "$m" rm -f /etc/apt/apt.conf.d/51restart-stale-local "$MARKS"
    e2e_step "install demo packages" e2e_demo_install "$m"
    e2e_wait_apt_finish "$m"
    e2e_policy "$m" demo-allowed.service allow
    old=$(e2e_unit_pid "$m" demo-allowed.service)
    write_session "$m" <<'EOF'
# Hold the dpkg frontend lock across several apt-get runs, as
# unattended-upgrades does; one argument per run ("pkg pkg ...").
use strict;
use warnings;
use Fcntl;

sub mark {
    system("printf '%s %s\n' '$_[0]' \"\$(date +%s.%6N)\" >>/run/e2e-apt-once.marks") == 0
        or die "mark: $?";
}

open(my $fh, '>>', '/var/lib/dpkg/lock-frontend') or die "open: $!";
# struct flock on x86_64: short l_type, short l_whence, (pad), off_t
# l_start, off_t l_len, pid_t l_pid, (pad); whence 0 = SEEK_SET.
my $lk = pack('s s x4 q q i x4', F_WRLCK, 0, 0, 0, 0);
fcntl($fh, F_SETLKW, $lk) or die "lock: $!";
mark('locked');
# We hold the frontend lock, so neither apt nor dpkg may take it.
$ENV{DPKG_FRONTEND_LOCKED} = 'true';
my @apt = ('apt-get', '-y', '-q', '-o', 'Debug::NoLocking=true',
    '-o', 'Dpkg::Options::=--force-confold', 'install');
my $n = 0;
for my $pkgs (@ARGV) {
    $n++;
    sleep 4 if $n > 1;
    mark("run$n-start");
    system(@apt, split(/ /, $pkgs)) == 0 or die "apt-get run $n failed";
    mark("run$n-end");
}
close($fh);
mark('unlock');
EOF

    e2e_publish "$m" v2 libdemo1 demo-allowed
    cursor=$(e2e_journal_cursor "$m")
    e2e_step "two apt-get runs under one lock" e2e_run "$m" perl "$SESSION" libdemo1 demo-allowed
    e2e_in "$m" cat "$MARKS" | sed 's/^/[e2e]   marks: /' >&2
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    assert_eq "2.0 2.0" "$(e2e_in "$m" dpkg-query -W -f='${Version} ' libdemo1 demo-allowed | sed 's/ $//')" \
        "installed libdemo1 and demo-allowed"
    e2e_step "wait for restart-stale-apt.service" e2e_wait_apt_finish "$m"

    log=$(e2e_journal "$m" "$cursor" -u "$E2E_FINISH_UNIT")
    printf '%s\n' "$log" | e2e_show_log
    n=$(grep -cE "systemd\\[1\\]: Starting $E2E_FINISH_UNIT" <<<"$log" || true)
    assert_eq 1 "$n" "starts of $E2E_FINISH_UNIT"
    n=$(grep -c 'apt transaction (' <<<"$log" || true)
    assert_eq 1 "$n" "transactions acted on"
    assert_line "$log" "apt transaction \\(2 hook runs, .*\\): demo-allowed:$arch 1\\.0 → 2\\.0, libdemo1:$arch 1\\.0 → 2\\.0\$" \
        "finish journal"
    assert_line "$log" 'waiting until the package manager is done' "finish journal"
    n=$(grep -c 'demo-allowed\.service: restarting' <<<"$log" || true)
    assert_eq 1 "$n" "restarts of demo-allowed by restart-stale"
    assert_line "$log" 'demo-allowed\.service: restarted in .*, verified clean$' "finish journal"

    alog=$(e2e_journal "$m" "$cursor" -u demo-allowed.service)
    printf '%s\n' "$alog" | e2e_show_log
    e2e_assert_demo_on_2_0 "$m" "$alog" "$old"

    t_restart=$(first_ts "$log" 'demo-allowed\.service: restarting')
    t_run2=$(mark run2-end)
    t_unlock=$(mark unlock)
    ((t_restart > t_run2)) || fail "restart ($t_restart) before the end of the second apt-get run ($t_run2)"
    ((t_restart > t_unlock)) || fail "restart ($t_restart) before the lock was released ($t_unlock)"
    e2e_log "ok: restart at $t_restart us, after run 2 ended ($t_run2) and the lock was released ($t_unlock)"
    last=$(e2e_in "$m" tail -n 1 /var/log/dpkg.log)
    dpkg_s=$(e2e_in "$m" date -d "$(cut -d' ' -f1-2 <<<"$last")" +%s)
    ((t_restart / 1000000 >= dpkg_s)) || fail "restart before the last dpkg.log line: $last"
    e2e_log "ok: last dpkg.log line ($last) not after the restart"
    e2e_measure "apt-hook finish acted $(((t_restart - t_unlock) / 1000)) ms after the frontend lock was released"
}
e2e_test_main t
