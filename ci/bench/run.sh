#!/bin/bash
# ci/bench/run.sh: how fast restart-stale finds stale mappings, side by side
# with the text floor, needrestart and checkrestart, on a synthetic load.
#
# Run as root on a quiet machine (it is not a test; nothing times out):
#   sudo ci/bench/run.sh            # N = 200 1000 3000, writes docs/benchmarks.md
#   BENCH_N="200" BENCH_REPS=3 ci/bench/run.sh   # a quick look
#
# The load: one holder process dlopen()s K copies of a tiny library and forks
# until N processes share those mappings; then every copy is replaced the way
# dpkg does (write NAME.dpkg-new, rename it over NAME), so each process holds
# K stale executable mappings. The libraries live in $BENCH_DIR (under
# /var/lib: /tmp, /run and /var/tmp are deliberately ignored by restart-stale).
#
# Settings (environment):
#   BENCH_N      process counts                 (default "200 1000 3000")
#   BENCH_K      libraries per process          (default 20)
#   BENCH_REPS   timed runs per tool and N      (default 7; medians reported)
#   BENCH_DIR    scratch directory, removed     (default /var/lib/restart-stale-bench)
#   BENCH_OUT    document to update             (default docs/benchmarks.md)
#   BENCH_NOTE   free text put in the document  (e.g. what else the machine ran)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ns=${BENCH_N:-200 1000 3000}
k=${BENCH_K:-20}
reps=${BENCH_REPS:-7}
dir=${BENCH_DIR:-/var/lib/restart-stale-bench}
out=${BENCH_OUT:-$repo/docs/benchmarks.md}
tools=(floor rs-auto rs-text needrestart checkrestart)

die() { echo "run.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

[[ $(id -u) == 0 ]] || die "run as root: every tool must read every process's maps"
[[ $dir == /?* ]] || die "BENCH_DIR must be an absolute path below /"
case $dir in /tmp/* | /run/* | /var/tmp/*) die "BENCH_DIR must not be under /tmp, /run or /var/tmp (ignored paths)" ;; esac

# --- cleanup: every process we started, every file we wrote -----------------
holder_pid=
stop_load() {
    if [[ -n $holder_pid ]]; then
        # The holder leads its own process group (setsid); its children also
        # die with it (PR_SET_PDEATHSIG).
        kill -KILL -- "-$holder_pid" 2>/dev/null || true
        wait "$holder_pid" 2>/dev/null || true
        holder_pid=
    fi
}
cleanup() {
    stop_load
    exec 3<&- 2>/dev/null || true
    rm -rf -- "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -------------------------------------------------------------------
need_pkgs=()
command -v gcc >/dev/null || need_pkgs+=(gcc libc6-dev)
command -v needrestart >/dev/null || need_pkgs+=(needrestart)
command -v checkrestart >/dev/null || need_pkgs+=(debian-goodies)
[[ -x /usr/bin/time ]] || need_pkgs+=(time)
if ((${#need_pkgs[@]})); then
    say "installing ${need_pkgs[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

say "building restart-stale (release)"
(cd "$repo" && cargo build --release --quiet)
rs=$repo/target/release/restart-stale
"$rs" status --help | grep -q -- --scan-method || die "$rs has no --scan-method; merge main first"

rm -rf -- "$dir"
mkdir -p "$dir"/{bin,lib,out}
gcc -O2 -Wall -o "$dir/bin/holder" "$here/holder.c" -ldl
gcc -O2 -Wall -o "$dir/bin/floor" "$here/floor.c"
gcc -O2 -Wall -o "$dir/bin/measure" "$here/measure.c"
gcc -O2 -Wall -shared -fPIC -o "$dir/lib.so" "$here/lib.c"

# needrestart: its own config plus an override that drops the /tmp and /run
# mapping filters, so nothing in the load can hide behind them.
nr_conf=$dir/needrestart.conf
cp /etc/needrestart/needrestart.conf "$nr_conf"
cat >>"$nr_conf" <<'EOF'

# restart-stale benchmark: keep every default mapping filter except the
# temporary-directory ones (qr(^(/var)?/tmp/) and qr(^(/var)?/run/)).
$nrconf{blacklist_mappings} = [ grep { "$_" !~ m{tmp|run} } @{$nrconf{blacklist_mappings}} ];
EOF

# How each tool is run. Every one only lists; none restarts anything.
run_tool() { # TOOL OUTFILE -> "microseconds exit"
    local tool=$1 o=$2 m=$dir/bin/measure
    case $tool in
    floor) "$m" "$o" "$dir/bin/floor" ;;
    rs-auto) "$m" "$o" "$rs" status --json --scan-method auto ;;
    rs-text) "$m" "$o" "$rs" status --json --scan-method text ;;
    # -b batch output, -r l list only, -l library check only (no kernel or
    # microcode check, which restart-stale does not do either).
    needrestart) "$m" "$o" needrestart -b -r l -l -c "$nr_conf" ;;
    # checkrestart only ever lists; -a counts every deleted file, not only
    # packaged ones (the load is no package's).
    checkrestart) "$m" "$o" checkrestart -a ;;
    esac
}
tool_cmd() { # the same, as words for /usr/bin/time
    case $1 in
    floor) echo "$dir/bin/floor" ;;
    rs-auto) echo "$rs status --json --scan-method auto" ;;
    rs-text) echo "$rs status --json --scan-method text" ;;
    needrestart) echo "needrestart -b -r l -l -c $nr_conf" ;;
    checkrestart) echo "checkrestart -a" ;;
    esac
}

# --- load --------------------------------------------------------------------
start_load() { # N
    local n=$1 libs=() i name
    rm -rf -- "${dir:?}/lib"
    mkdir -p "$dir/lib"
    for ((i = 1; i <= k; i++)); do
        name=$(printf '%s/lib/libbench%02d.so' "$dir" "$i")
        cp "$dir/lib.so" "$name"
        libs+=("$name")
    done
    exec 3< <(exec setsid "$dir/bin/holder" "$n" "${libs[@]}")
    holder_pid=$!
    local line
    read -r -t 120 line <&3 || die "holder did not start"
    [[ $line == ready ]] || die "holder said: $line"
    # Replace every copy the way dpkg unpacks: new content beside, rename over.
    for name in "${libs[@]}"; do
        cp "$dir/lib.so" "$name.dpkg-new"
        echo "rebuilt" >>"$name.dpkg-new"
        mv -f "$name.dpkg-new" "$name"
    done
}

# How many processes each tool reported as holding the load's libraries.
# This only guards against a tool silently missing the load.
seen_by() { # TOOL OUTFILE
    case $1 in
    floor) echo - ;;
    rs-*) grep -o '"pid": [0-9]*' "$2" | sort -u | wc -l ;;
    needrestart) echo - ;; # -b lists services and sessions, not processes
    checkrestart) sed -n 's/^Found \([0-9]*\) processes.*/\1/p' "$2" ;;
    esac
}

raw=$dir/out/raw.tsv # N tool rep microseconds
rss=$dir/out/rss.tsv # N tool kilobytes
: >"$raw"
: >"$rss"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')

for n in $ns; do
    say "N=$n: starting $n processes with $k replaced libraries each"
    start_load "$n"
    lines=$(wc -l <"/proc/$holder_pid/maps")
    stale_lines=$(grep -c "$dir/lib/.*(deleted)" "/proc/$holder_pid/maps" || true)
    echo "$n maps_lines $lines $stale_lines" >>"$dir/out/load.txt"

    # Warm-up, and a check that every tool sees the load.
    for t in "${tools[@]}"; do
        read -r _ rc < <(run_tool "$t" "$dir/out/$t.out")
        s=$(seen_by "$t" "$dir/out/$t.out")
        say "N=$n warm-up $t: exit $rc, stale processes reported: $s"
        case $t:$rc in floor:0 | rs-*:0 | rs-*:3 | needrestart:0 | checkrestart:0) ;;
        *) cat "$dir/out/$t.out" >&2; die "$t failed (exit $rc)" ;; esac
    done
    # needrestart -b prints no per-process lines; -v does.
    needrestart -v -b -r l -l -c "$nr_conf" >"$dir/out/nr-v.out" 2>&1 || true
    nr_seen=$(grep -c "$dir/lib" "$dir/out/nr-v.out" || true)
    say "N=$n needrestart -v lines naming the load's libraries: $nr_seen"
    echo "$n nr_verbose_lines $nr_seen" >>"$dir/out/load.txt"

    # Timed runs, round robin so that drift hits every tool alike.
    for ((r = 1; r <= reps; r++)); do
        for t in "${tools[@]}"; do
            read -r us _ < <(run_tool "$t" "$dir/out/$t.out")
            printf '%s\t%s\t%s\t%s\n' "$n" "$t" "$r" "$us" >>"$raw"
        done
        say "N=$n rep $r/$reps done"
    done
    # Peak RSS, one extra run each under GNU time.
    for t in "${tools[@]}"; do
        # shellcheck disable=SC2046 # tool_cmd returns words on purpose
        /usr/bin/time -f %M -o "$dir/out/rss" $(tool_cmd "$t") >/dev/null 2>&1 || true
        printf '%s\t%s\t%s\n' "$n" "$t" "$(tail -n1 "$dir/out/rss")" >>"$rss"
    done
    stop_load
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------
# Medians per (N, tool), then one table row per N.
medians=$dir/out/medians.tsv
sort -k1,1n -k2,2 -k4,4n "$raw" | awk -F'\t' '
    { key = $1 "\t" $2; v[key, ++c[key]] = $4; if (!(key in seen)) { seen[key]; order[++nk] = key } }
    END { for (i = 1; i <= nk; i++) { key = order[i]; m = c[key];
          med = (m % 2) ? v[key, (m + 1) / 2] : (v[key, m / 2] + v[key, m / 2 + 1]) / 2;
          printf "%s\t%d\n", key, med } }' >"$medians"

table=$(awk -F'\t' -v ns="$ns" '
    FILENAME == ARGV[1] { t[$1, $2] = $3 / 1000; next }
    { r[$1, $2] = $3 / 1024 }
    function x(a, b) { return (b > 0) ? sprintf("%.2f×", a / b) : "n/a" }
    END {
        split(ns, n, " ")
        print "| N | floor | rs auto | rs text | needrestart | checkrestart | floor / auto | text / floor | needrestart / auto | checkrestart / auto |"
        print "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for (i = 1; i in n; i++) { N = n[i]
            printf "| %d | %.1f ms | %.1f ms | %.1f ms | %.0f ms | %.0f ms | %s | %s | %s | %s |\n", N,
                t[N, "floor"], t[N, "rs-auto"], t[N, "rs-text"], t[N, "needrestart"], t[N, "checkrestart"],
                x(t[N, "floor"], t[N, "rs-auto"]), x(t[N, "rs-text"], t[N, "floor"]),
                x(t[N, "needrestart"], t[N, "rs-auto"]), x(t[N, "checkrestart"], t[N, "rs-auto"]) }
        print ""
        print "Peak RSS (`/usr/bin/time -f %M`):"
        print ""
        print "| N | floor | rs auto | rs text | needrestart | checkrestart | rs auto / needrestart |"
        print "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for (i = 1; i in n; i++) { N = n[i]
            printf "| %d | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %s |\n", N,
                r[N, "floor"], r[N, "rs-auto"], r[N, "rs-text"], r[N, "needrestart"], r[N, "checkrestart"],
                x(r[N, "rs-auto"], r[N, "needrestart"]) }
    }' "$medians" "$rss")

# The issue's targets, judged on this run.
verdicts=$(awk -F'\t' -v ns="$ns" '
    FILENAME == ARGV[1] { t[$1, $2] = $3; next }
    { r[$1, $2] = $3 }
    function v(ok) { return ok ? "met" : "**missed**" }
    END {
        split(ns, n, " ")
        for (i = 1; i in n; i++) { N = n[i]
            q = t[N, "floor"] / t[N, "rs-auto"]; s = t[N, "rs-text"] / t[N, "floor"]
            printf "- N=%d: PROCMAP_QUERY scan ≥ 2× faster than the floor: %.2f× — %s\n", N, q, v(q >= 2)
            printf "- N=%d: text scan ≤ 1.15× the floor: %.2f× — %s\n", N, s, v(s <= 1.15)
            m = r[N, "rs-auto"] / r[N, "needrestart"]
            printf "- N=%d: peak RSS ≤ ¼ of needrestart'\''s: %.2f — %s\n", N, m, v(m <= 0.25)
            if (N == 200 || N == 1000) { want = (N == 200) ? 25 : 10; z = t[N, "needrestart"] / t[N, "rs-auto"]
                printf "- N=%d: ≥ %d× faster than needrestart: %.1f× — %s\n", N, want, z, v(z >= want) }
        }
    }' "$medians" "$rss")

mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
nr_version=$(dpkg-query -W -f '${Version}' needrestart 2>/dev/null || echo '?')
dg_version=$(dpkg-query -W -f '${Version}' debian-goodies 2>/dev/null || echo '?')
rs_commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')
load_lines=$(awk '$2 == "maps_lines" { printf "%s%d: %d lines, %d stale", sep, $1, $3, $4; sep = "; " }' "$dir/out/load.txt")

section=$(
    cat <<EOF
Run on $started, restart-stale $rs_commit (release build), $reps timed runs per tool and N (medians), K=$k libraries per process.

- Machine: $(nproc) CPUs ($cpu), $mem memory
- Kernel: $(uname -r)
- needrestart $nr_version, debian-goodies (checkrestart) $dg_version
- Load average (1, 5, 15 min) before: $load_before; after: $load_after
- /proc/PID/maps of one holder, by N: $load_lines
${BENCH_NOTE:+- Note: $BENCH_NOTE}

$table

Targets from issue 7, this run:

$verdicts
EOF
)

echo
echo "$section"

# Replace the generated part of the document, keep the prose around it.
begin='<!-- bench:begin (written by ci/bench/run.sh) -->'
end='<!-- bench:end -->'
printf '%s\n' "$section" >"$dir/out/section.md"
if [[ -f $out ]] && grep -qF "$begin" "$out"; then
    tmp=$(mktemp "$out.XXXXXX")
    awk -v b="$begin" -v e="$end" -v f="$dir/out/section.md" '
        $0 == b { print; while ((getline l < f) > 0) print l; skip = 1; next }
        $0 == e { skip = 0 }
        !skip' "$out" >"$tmp"
    mv "$tmp" "$out"
else
    printf '# Benchmarks\n\n%s\n%s\n%s\n' "$begin" "$section" "$end" >"$out"
fi
say "wrote $out"
