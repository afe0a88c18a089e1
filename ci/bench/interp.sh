#!/bin/bash
# ci/bench/interp.sh: the interpreted load. P python3 and P perl processes
# (forked from one parent each, so they run the same script), each script
# importing M modules of its own; then R of each language's modules are
# replaced the way dpkg does, and every process runs stale code.
#
# Run as root (every process's /proc entries must be readable):
#   ci/bench/interp.sh
#   BENCH_P=50 BENCH_REPS=3 ci/bench/interp.sh      # a quick look
# Prints median wall and CPU times of `restart-stale status --json` before
# and after the replacement, and of `needrestart -b -r l` when installed
# (it is not installed for you: it runs the interpreters it inspects).
#
# Settings (environment): BENCH_P (200), BENCH_M (30), BENCH_R (5),
# BENCH_REPS (7), BENCH_DIR (/opt/restart-stale-bench-interp: not under
# /tmp, /run or /home, where restart-stale's files are report-only or
# ignored, nor under /var, whose scripts needrestart's default
# blacklist_interp never reads, which would compare against a needrestart
# that did not look),
# BENCH_SAVE (a directory to keep the tools' last outputs in).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
p=${BENCH_P:-200}
m=${BENCH_M:-30}
r=${BENCH_R:-5}
reps=${BENCH_REPS:-7}
dir=${BENCH_DIR:-/opt/restart-stale-bench-interp}
rs=${BENCH_RS:-$repo/target/release/restart-stale}

die() { echo "interp.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

[[ $(id -u) == 0 ]] || die "run as root"
[[ -x /usr/bin/python3 && -x /usr/bin/perl ]] || die "needs /usr/bin/python3 and /usr/bin/perl"
case $dir in /tmp/* | /run/* | /var/* | /home/* | /srv/*) die "BENCH_DIR must not be where users control files, nor under /var (see above)" ;; esac

pids=()
cleanup() {
    for pg in ${pids[@]+"${pids[@]}"}; do kill -KILL -- "-$pg" 2>/dev/null || true; done
    rm -rf -- "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ -x $rs ]] || (cd "$repo" && cargo build --release --quiet)
rm -rf -- "$dir"
mkdir -p "$dir"/{py,pl/Bench,bin,out}
gcc -O2 -Wall -o "$dir/bin/measure" "$here/measure.c"

# Python: main.py imports bench01..M; each module imports the next two
# and a little of the standard library, so the walk follows chains.
for ((i = 1; i <= m; i++)); do
    {
        printf 'import os\nimport json\n'
        ((i + 1 <= m)) && printf 'import bench%02d\n' $((i + 1))
        ((i + 2 <= m)) && printf 'from bench%02d import *\n' $((i + 2))
        printf 'VALUE_%d = %d\n' "$i" "$i"
    } >"$(printf '%s/py/bench%02d.py' "$dir" "$i")"
done
{
    for ((i = 1; i <= m; i++)); do printf 'import bench%02d\n' "$i"; done
    cat <<PY
import os, sys, time
for _ in range(int(sys.argv[1]) - 1):
    if os.fork() == 0:
        break
else:
    print("ready", flush=True)
time.sleep(3600)
PY
} >"$dir/py/main.py"

# Perl: the same shape with Bench::ModNN.
for ((i = 1; i <= m; i++)); do
    {
        printf 'package Bench::Mod%02d;\nuse strict;\nuse warnings;\n' "$i"
        ((i + 1 <= m)) && printf 'use Bench::Mod%02d;\n' $((i + 1))
        ((i + 2 <= m)) && printf 'use parent -norequire, "Bench::Mod%02d";\n' $((i + 2))
        printf '1;\n'
    } >"$(printf '%s/pl/Bench/Mod%02d.pm' "$dir" "$i")"
done
{
    printf 'use strict;\nuse lib "%s/pl";\n' "$dir"
    for ((i = 1; i <= m; i++)); do printf 'use Bench::Mod%02d;\n' "$i"; done
    cat <<'PL'
my $n = shift;
my $parent = 1;
for (2 .. $n) { my $pid = fork(); if (defined $pid && $pid == 0) { $parent = 0; last } }
if ($parent) { $| = 1; print "ready\n" }
sleep 3600;
PL
} >"$dir/pl/main.pl"

start() { # CMD... : a process group that prints "ready" once all are forked
    local line
    exec 3< <(exec setsid "$@")
    pids+=($!)
    read -r -t 120 line <&3 || die "$* did not start"
    [[ $line == ready ]] || die "$* said: $line"
    exec 3<&-
}
say "starting $p python3 and $p perl processes, $m modules each"
# PYTHONPATH and PERL5LIB name the modules' directories, as a service's
# Environment= would: needrestart asks the interpreter for sys.path from an
# empty directory, so without them it would never find the script's own
# modules and the two tools would not be looking at the same files.
start env PYTHONPATH="$dir/py" /usr/bin/python3 -B "$dir/py/main.py" "$p"
start env PERL5LIB="$dir/pl" /usr/bin/perl "$dir/pl/main.pl" "$p"
sleep 2 # a change must be clearly after the processes started

tools=(rs)
command -v needrestart >/dev/null && tools+=(needrestart)
tool_cmd() {
    case $1 in
    rs) echo "$rs status --json" ;;
    needrestart) echo "needrestart -b -r l" ;;
    esac
}
raw=$dir/out/raw
: >"$raw"
timed() { # PHASE
    local i t us cpu
    for ((i = 1; i <= reps; i++)); do
        for t in "${tools[@]}"; do
            # shellcheck disable=SC2046 # tool_cmd returns words on purpose
            read -r us _ cpu < <("$dir/bin/measure" "$dir/out/$t.$1" $(tool_cmd "$t"))
            echo "$1 $t $us $cpu" >>"$raw"
        done
    done
}
stale_procs() { # PHASE: processes of the load that restart-stale reports
    python3 -c 'import json, sys
# measure sends stderr (warnings) to the same file: take the JSON line.
doc = json.loads(next(l for l in open(sys.argv[1]) if l.startswith("{")))
procs = doc["outside"] + [p for u in doc["units"] for p in u["processes"]]
print(len({p["pid"] for p in procs if any(f["path"].startswith(sys.argv[2]) for f in p["files"])}))' \
        "$dir/out/rs.$1" "$dir/"
}

timed fresh
say "fresh: restart-stale reports $(stale_procs fresh) stale processes"
for ((i = 1; i <= r; i++)); do
    for f in "$(printf '%s/py/bench%02d.py' "$dir" "$i")" "$(printf '%s/pl/Bench/Mod%02d.pm' "$dir" "$i")"; do
        cp "$f" "$f.dpkg-new"
        echo "# rebuilt" >>"$f.dpkg-new"
        mv -f "$f.dpkg-new" "$f"
    done
done
timed stale
[[ -z ${BENCH_SAVE:-} ]] || { mkdir -p "$BENCH_SAVE" && cp "$dir"/out/*.fresh "$dir"/out/*.stale "$BENCH_SAVE"/; }
say "stale: restart-stale reports $(stale_procs stale) stale processes (want $((2 * p)))"
if [[ " ${tools[*]} " == *" needrestart "* ]]; then
    # needrestart's batch output names services and sessions, and this
    # load runs in neither: its verbose log names each process it finds.
    needrestart -v -b -r l >/dev/null 2>"$dir/out/needrestart.verbose" || true
    python3 -c 'import json, re, sys
doc = json.loads(next(l for l in open(sys.argv[1]) if l.startswith("{")))
procs = doc["outside"] + [p for u in doc["units"] for p in u["processes"]]
rs = {p["pid"] for p in procs if any(f["path"].startswith(sys.argv[3]) for f in p["files"])}
nr = {int(m) for m in re.findall(r"#(\d+) uses obsolete script file", open(sys.argv[2]).read())}
print(f"== stale: needrestart -v finds {len(nr)}; restart-stale {len(rs)}; "
      f"found by both {len(rs & nr)}, only restart-stale {len(rs - nr)}, only needrestart {len(nr - rs)}",
      file=sys.stderr)' "$dir/out/rs.stale" "$dir/out/needrestart.verbose" "$dir/"
fi
python3 -c 'import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    phase, tool, us, cpu = line.split()
    runs.setdefault((phase, tool), []).append((int(us), int(cpu)))
for (phase, tool), v in sorted(runs.items()):
    wall = statistics.median(u for u, _ in v) / 1000
    cpu = statistics.median(c for _, c in v) / 1000
    print(f"{phase:6} {tool:12} median wall {wall:8.1f} ms, cpu {cpu:8.1f} ms")' "$raw"
