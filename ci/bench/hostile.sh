#!/bin/bash
# ci/bench/hostile.sh: what a hostile process costs `restart-stale status`
# (issue 22, docs/benchmarks.md "Hostile processes"), next to another
# build of it (the one before the change), timed in turn run by run.
#
#   sudo ci/bench/hostile.sh [OLD_BINARY]
#
# Loads, one at a time, each alone on the machine besides its usual
# processes (first none: the scan of those alone, which every figure holds):
#   maps60k  a python3 that maps 60,000 files of its own, then deletes them
#   fds18k   a python3 that holds 18,000 files open, then deletes them,
#            moved into a service's cgroup (only services' open files count)
#   uselib   a perl running a script of 2,000 `use lib` and 2,000 `use`
#   elf1000  1,000 processes with 20 replaced libraries each (the load of
#            ci/bench/run.sh at N=1000)
# and prints, per load and binary, the median wall and CPU time of
# `status --json` over BENCH_REPS runs (default 5), the two binaries
# alternating. OLD_BINARY is optional; without it only this tree's release
# build is timed. The old build may need minutes for a load (that is the
# point); nothing here has a timeout.
#
# Settings: BENCH_REPS (5), BENCH_DIR (/opt/restart-stale-bench-hostile:
# not under /tmp, /run or /var, which the scan ignores or treats as data).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
reps=${BENCH_REPS:-5}
dir=${BENCH_DIR:-/opt/restart-stale-bench-hostile}
new=$repo/target/release/restart-stale
old=${1:-}

die() { echo "hostile.sh: $*" >&2; exit 1; }
say() { echo "hostile.sh: $*" >&2; }
[[ $(id -u) == 0 ]] || die "run as root: every process's /proc entries must be readable"
[[ -z $old || -x $old ]] || die "$old is not an executable"

load_pids=()
unit_cgroups=()
cleanup() {
    local p
    for p in "${load_pids[@]}"; do
        kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
    done
    sleep 0.5
    for p in "${unit_cgroups[@]}"; do
        rmdir "$p" 2>/dev/null || true
    done
    rm -rf -- "${dir:?}"
}
trap cleanup EXIT

say "building restart-stale (release)"
(cd "$repo" && cargo build --release --quiet)
rm -rf -- "$dir"
mkdir -p "$dir"/{bin,out}
for c in holder measure; do
    gcc -O2 -Wall -o "$dir/bin/$c" "$here/$c.c" -ldl
done
gcc -O2 -Wall -shared -fPIC -o "$dir/lib.so" "$here/lib.c"

# started CMD...: runs CMD in its own session, waits for its "ready" line.
started() {
    local line
    exec 3< <(exec setsid "$@")
    load_pids+=($!)
    read -r -t 600 line <&3 || die "$1 did not start"
    [[ $line == ready ]] || die "$1 said: $line"
    exec 3<&-
}

many_files() { # WHAT N: python3 mapping ("map") or holding ("open") N deleted files
    mkdir -p "$dir/files"
    started python3 -c '
import ctypes, os, resource, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
d, what, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
keep = []
for i in range(n):
    p = os.path.join(d, "f%d" % i)
    with open(p, "wb") as f:
        f.write(b"x")
    f = open(p, "rb")
    if what == "map":
        libc.mmap(None, 1, 5, 2, f.fileno(), 0)
        f.close()
    else:
        keep.append(f)
    os.unlink(p)
print("ready", flush=True)
time.sleep(3600)
' "$dir/files" "$1" "$2"
}

# into_unit PID: moves PID into system.slice/restart-stale-bench.service of
# every cgroup tree that names units (v2, or v1's name=systemd), so the
# scan counts it as a service's: only those get their open files read.
into_unit() {
    local tree cg
    for tree in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
        [[ -e $tree/cgroup.procs ]] || continue
        [[ $tree != /sys/fs/cgroup || $(stat -f -c %T "$tree") == cgroup2fs ]] || continue
        cg=$tree/system.slice/restart-stale-bench.service
        mkdir -p "$cg"
        unit_cgroups+=("$cg")
        echo "$1" >"$cg/cgroup.procs"
    done
    grep -q 'restart-stale-bench.service' "/proc/$1/cgroup" || die "could not put $1 in a unit's cgroup"
}

use_lib() { # a perl whose script has 2,000 `use lib` and 2,000 `use` lines
    local i s=$dir/uselib/big.pl
    mkdir -p "$dir/uselib"
    : >"$s"
    for ((i = 0; i < 2000; i++)); do
        mkdir -p "$dir/uselib/d$i"
        echo '1;' >"$dir/uselib/d$i/M$i.pm"
        printf 'use lib "%s/uselib/d%d";\nuse M%d;\n' "$dir" "$i" "$i" >>"$s"
    done
    printf '$| = 1;\nprint "ready\\n";\nsleep 3600;\n' >>"$s"
    started perl "$s"
    # A change after its start makes every module worth a look.
    sleep 1.2
    touch "$dir"/uselib/d*/M*.pm
}

elf_load() { # 1,000 processes, 20 replaced libraries each
    local i name libs=()
    mkdir -p "$dir/lib"
    for ((i = 1; i <= 20; i++)); do
        name=$(printf '%s/lib/libbench%02d.so' "$dir" "$i")
        cp "$dir/lib.so" "$name"
        libs+=("$name")
    done
    started "$dir/bin/holder" 1000 "${libs[@]}"
    for name in "${libs[@]}"; do
        cp "$dir/lib.so" "$name.dpkg-new"
        echo rebuilt >>"$name.dpkg-new"
        mv -f "$name.dpkg-new" "$name"
    done
}

stop_loads() {
    local p
    for p in "${load_pids[@]}"; do
        kill -KILL -- "-$p" 2>/dev/null || true
    done
    load_pids=()
    sleep 1
    rm -rf -- "${dir:?}"/{files,uselib,lib}
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# time_binaries LOAD: BENCH_REPS runs of each binary, alternating.
time_binaries() {
    local load=$1 r b us rc cpu
    local bins=("$new")
    [[ -z $old ]] || bins+=("$old")
    for ((r = 1; r <= reps; r++)); do
        for b in "${bins[@]}"; do
            read -r us rc cpu < <("$dir/bin/measure" "$dir/out/last" "$b" status --json)
            [[ $rc == 0 || $rc == 3 ]] || die "$b status exited $rc on $load: $(tail -n 3 "$dir/out/last")"
            printf '%s\t%s\t%s\t%s\n' "$load" "$b" "$us" "$cpu" >>"$dir/out/raw.tsv"
        done
    done
    for b in "${bins[@]}"; do
        printf '| %s | %s | %s ms | %s ms |\n' "$load" "$([[ $b == "$new" ]] && echo this tree || echo "$old")" \
            "$(awk -F'\t' -v l="$load" -v b="$b" '$1 == l && $2 == b { print $3 / 1000 }' "$dir/out/raw.tsv" | median)" \
            "$(awk -F'\t' -v l="$load" -v b="$b" '$1 == l && $2 == b { print $4 / 1000 }' "$dir/out/raw.tsv" | median)"
    done
}

: >"$dir/out/raw.tsv"
echo "| load | binary | wall (median of $reps) | CPU |"
echo "| --- | --- | --- | --- |"
for load in none maps60k fds18k uselib elf1000; do
    say "starting $load"
    case $load in
    none) ;;
    maps60k) many_files map 60000 ;;
    fds18k)
        many_files open 18000
        into_unit "${load_pids[-1]}"
        ;;
    uselib) use_lib ;;
    elf1000) elf_load ;;
    esac
    time_binaries "$load"
    stop_loads
done
