#!/bin/bash
# ci/bench/run.sh: how fast restart-stale finds stale mappings, side by side
# with two floors, needrestart and checkrestart, on a synthetic load: wall
# time, CPU time and peak RSS, restart-stale on one thread and on all.
#
# Run as root on a quiet machine (it is not a test; nothing times out):
#   ci/bench/run.sh                               # N = 200 1000 3000, writes docs/benchmarks.md
#   BENCH_N=200 BENCH_REPS=3 BENCH_OUT=/dev/null ci/bench/run.sh   # a quick look
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
rs=$repo/target/release/restart-stale

die() { echo "run.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

[[ $(id -u) == 0 ]] || die "run as root: every tool must read every process's maps"
[[ $dir == /?* ]] || die "BENCH_DIR must be an absolute path below /"
case $dir in /tmp/* | /run/* | /var/tmp/*) die "BENCH_DIR must not be under /tmp, /run or /var/tmp (ignored paths)" ;; esac
[[ $dir$rs != *[[:space:]]* ]] || die "paths with spaces are not supported: $dir, $rs"

# Every tool, and how it is run. Each one only lists; none restarts anything.
# rs-auto is what users run (as many threads as cores, up to 8); rs-1 the
# same on one thread; rs-text stays on one thread to compare with the floor.
tools=(floor query-floor rs-1 rs-auto rs-text rs-auto-plain needrestart checkrestart)
# Before the libraries are replaced: what the scan alone costs when nothing
# is stale (no report lines, no per-process name, executable or cgroup).
fresh_tools=(fresh-floor fresh-rs-auto fresh-rs-text)
nr_conf=$dir/needrestart.conf
tool_cmd() { # TOOL -> command words
    case $1 in
    fresh-*) tool_cmd "${1#fresh-}" ;;
    floor) echo "$dir/bin/floor" ;;             # read every maps file, discard
    query-floor) echo "$dir/bin/query_floor" ;; # PROCMAP_QUERY every exec VMA, discard
    rs-auto) echo "$rs status --json --scan-method auto" ;;
    rs-1) echo "$rs status --json --scan-method auto" ;; # on one thread: tool_threads
    rs-text) echo "$rs status --json --scan-method text" ;;
    rs-auto-plain) echo "$rs status --scan-method auto" ;; # the text report instead of JSON
    # -b batch output, -r l list only, -l the library check only (no kernel
    # or microcode check: restart-stale does neither).
    needrestart) echo "needrestart -b -r l -l -c $nr_conf" ;;
    # checkrestart only ever lists; -a counts every deleted file, not only
    # packaged ones (the load belongs to no package).
    checkrestart) echo "checkrestart -a" ;;
    esac
}
tool_threads() { # TOOL -> RESTART_STALE_THREADS for it, empty for the default
    case ${1#fresh-} in rs-1 | rs-text) echo 1 ;; esac
}
with_threads() { # TOOL CMD... : CMD with the tool's thread count, no env(1) exec timed
    local th
    th=$(tool_threads "$1")
    shift
    if [[ -n $th ]]; then
        RESTART_STALE_THREADS=$th "$@"
    else
        "$@"
    fi
}
unset RESTART_STALE_THREADS
run_tool() { # TOOL OUTFILE -> "wall_us exit cpu_us"
    # shellcheck disable=SC2046 # tool_cmd returns words on purpose
    with_threads "$1" "$dir/bin/measure" "$2" $(tool_cmd "$1")
}
ok_exit() { # TOOL EXIT
    case ${1#fresh-}:$2 in floor:0 | query-floor:0 | rs-*:0 | rs-*:3 | needrestart:0 | checkrestart:0) return 0 ;; esac
    return 1
}

# --- cleanup: every process we started, every file we wrote -----------------
holder_pid=
stop_load() {
    if [[ -n $holder_pid ]]; then
        # The holder leads its own process group (setsid); its children also
        # die with it (PR_SET_PDEATHSIG).
        kill -KILL -- "-$holder_pid" 2>/dev/null || true
        wait "$holder_pid" 2>/dev/null || true
        # Killed processes linger until reaped; don't time the next N (or
        # leave) while thousands are still exiting.
        local i
        for ((i = 0; i < 300; i++)); do
            pgrep -g "$holder_pid" >/dev/null || break
            sleep 0.1
        done
        holder_pid=
    fi
}
cleanup() {
    stop_load
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
if ((${#need_pkgs[@]})) && command -v apt-get >/dev/null; then
    say "installing ${need_pkgs[*]} from Debian"
    # Best effort: a tool that is still missing is reported "not installed".
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"; } >/dev/null ||
        say "could not install ${need_pkgs[*]}"
fi
command -v gcc >/dev/null || die "gcc is needed to build the load"
missing=()
for t in needrestart checkrestart; do
    command -v "$t" >/dev/null || {
        missing+=("$t")
        tools=("${tools[@]/$t/}")
        say "$t: not installed, left out"
    }
done

say "building restart-stale (release)"
(cd "$repo" && cargo build --release --quiet)
"$rs" status --scan-method text --help >/dev/null 2>&1 || die "$rs has no --scan-method; merge main first"

rm -rf -- "$dir"
mkdir -p "$dir"/{bin,lib,out}
for c in holder floor query_floor measure; do
    gcc -O2 -Wall -o "$dir/bin/$c" "$here/$c.c" -ldl
done
gcc -O2 -Wall -shared -fPIC -o "$dir/lib.so" "$here/lib.c"

# needrestart: its own default config plus an override that drops the /tmp
# and /run mapping filters, so nothing in the load can hide behind them.
[[ -f /etc/needrestart/needrestart.conf ]] && cp /etc/needrestart/needrestart.conf "$nr_conf"
cat >>"$nr_conf" <<'EOF'

# restart-stale benchmark: keep every default mapping filter except the
# temporary-directory ones (qr(^(/var)?/tmp/) and qr(^(/var)?/run/)).
$nrconf{blacklist_mappings} = [ grep { "$_" !~ m{tmp|run} } @{$nrconf{blacklist_mappings}} ];
EOF

# --- load --------------------------------------------------------------------
libs=()
start_load() { # N: the holder and its children, every library still current
    local n=$1 i name line
    libs=()
    rm -rf -- "${dir:?}/lib"
    mkdir -p "$dir/lib"
    for ((i = 1; i <= k; i++)); do
        name=$(printf '%s/lib/libbench%02d.so' "$dir" "$i")
        cp "$dir/lib.so" "$name"
        libs+=("$name")
    done
    exec 3< <(exec setsid "$dir/bin/holder" "$n" "${libs[@]}")
    holder_pid=$!
    read -r -t 120 line <&3 || die "holder did not start"
    [[ $line == ready ]] || die "holder said: $line"
    exec 3<&-
}
replace_libs() { # every copy, the way dpkg unpacks: new content beside, rename over
    local name
    for name in "${libs[@]}"; do
        cp "$dir/lib.so" "$name.dpkg-new"
        echo "rebuilt" >>"$name.dpkg-new"
        mv -f "$name.dpkg-new" "$name"
    done
}

# How many processes a tool reported as stale; guards against a tool
# silently missing the load.
seen_by() { # TOOL OUTFILE
    case $1 in
    rs-auto | rs-1 | rs-text) grep -o '"pid": [0-9]*' "$2" | sort -u | wc -l ;;
    rs-auto-plain) grep -c '^ *pid [0-9]' "$2" || true ;;
    checkrestart) sed -n 's/^Found \([0-9]*\) processes.*/\1/p' "$2" ;;
    *) echo - ;; # the floors find nothing; needrestart -b lists services only
    esac
}

# CPU time the whole machine spent busy, in microseconds (from /proc/stat).
busy_us() {
    awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.0f\n", ($2 + $3 + $4 + $7 + $8 + $9) * 1000000 / hz; exit }' /proc/stat
}

raw=$dir/out/raw.tsv # N tool rep wall_us cpu_us
rss=$dir/out/rss.tsv # N tool kilobytes
: >"$raw"
: >"$rss"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')

# Timed runs of the tools named, round robin so that drift hits every tool
# alike, starting one tool later each repetition so that no tool always
# runs right after the same other one. Adds the tools' CPU time to $own.
timed_runs() { # N TOOL...
    local n=$1 r i t us cpu
    shift
    local ts=("$@")
    for ((r = 1; r <= reps; r++)); do
        for ((i = 0; i < ${#ts[@]}; i++)); do
            t=${ts[(i + r) % ${#ts[@]}]}
            read -r us _ cpu < <(run_tool "$t" "$dir/out/$t.out")
            printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$t" "$r" "$us" "$cpu" >>"$raw"
            own=$((own + cpu))
        done
        say "N=$n rep $r/$reps done (${ts[*]})"
    done
}

for n in $ns; do
    say "N=$n: starting $n processes with $k libraries each"
    start_load "$n"
    own=0
    for t in "${fresh_tools[@]}"; do
        read -r _ rc _ < <(run_tool "$t" "$dir/out/$t.out")
        ok_exit "$t" "$rc" || { cat "$dir/out/$t.out" >&2; die "$t failed (exit $rc)"; }
    done
    timed_runs "$n" "${fresh_tools[@]}"
    say "N=$n: replacing the $k libraries"
    replace_libs
    lines=$(wc -l <"/proc/$holder_pid/maps")
    stale_lines=$(grep -c "$dir/lib/.*(deleted)" "/proc/$holder_pid/maps" || true)
    echo "$n maps_lines $lines $stale_lines" >>"$dir/out/load.txt"

    # Warm-up, and a check that every tool sees the load.
    for t in "${tools[@]}"; do
        [[ -n $t ]] || continue
        read -r _ rc _ < <(run_tool "$t" "$dir/out/$t.out")
        if [[ $t == query-floor && $rc == 3 ]]; then
            say "no PROCMAP_QUERY on this kernel: dropping query-floor"
            tools=("${tools[@]/query-floor/}")
            continue
        fi
        ok_exit "$t" "$rc" || { cat "$dir/out/$t.out" >&2; die "$t failed (exit $rc)"; }
        say "N=$n warm-up $t: exit $rc, stale processes reported: $(seen_by "$t" "$dir/out/$t.out")"
    done
    # needrestart -b prints no per-process lines; -v does.
    if command -v needrestart >/dev/null; then
        needrestart -v -b -r l -l -c "$nr_conf" >"$dir/out/nr-v.out" 2>&1 || true
        say "N=$n needrestart -v lines naming the load: $(grep -c "$dir/lib" "$dir/out/nr-v.out" || true)"
    fi

    # The machine's busy time minus the tools' own CPU time is what
    # everything else (other users, this script) took meanwhile: the noise
    # indicator.
    busy0=$(busy_us) wall0=$(date +%s%N) own=0
    present=()
    for t in ${tools[@]+"${tools[@]}"}; do [[ -z $t ]] || present+=("$t"); done
    timed_runs "$n" "${present[@]}"
    busy1=$(busy_us) wall1=$(date +%s%N)
    awk -v n="$n" -v b="$((busy1 - busy0))" -v o="$own" -v w="$(((wall1 - wall0) / 1000))" -v c="$(nproc)" \
        'BEGIN { printf "%d other_cpu %.1f\n", n, 100 * (b - o) / (w * c) }' >>"$dir/out/load.txt"
    # Peak RSS, one extra run each under GNU time.
    for t in "${tools[@]}"; do
        [[ -n $t ]] || continue
        # shellcheck disable=SC2046 # tool_cmd returns words on purpose
        with_threads "$t" /usr/bin/time -f %M -o "$dir/out/rss" $(tool_cmd "$t") >/dev/null 2>&1 || true
        printf '%s\t%s\t%s\n' "$n" "$t" "$(tail -n1 "$dir/out/rss")" >>"$rss"
    done
    stop_load
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------
# Medians per (N, tool) of column COL of $raw (4 wall, 5 CPU).
median_of() { # COL
    sort -t $'\t' -k1,1n -k2,2 -k"$1,$1"n "$raw" | awk -F'\t' -v col="$1" '
    { key = $1 "\t" $2; v[key, ++c[key]] = $col; if (!(key in seen)) { seen[key]; order[++nk] = key } }
    END { for (i = 1; i <= nk; i++) { key = order[i]; m = c[key]
          med = (m % 2) ? v[key, (m + 1) / 2] : (v[key, m / 2] + v[key, m / 2 + 1]) / 2
          printf "%s\t%d\n", key, med } }'
}
medians=$dir/out/medians.tsv
cpus=$dir/out/cpu.tsv
median_of 4 >"$medians"
median_of 5 >"$cpus"
# Ratios pair by pair: A / B within each repetition (the two ran moments
# apart), then the median over the repetitions. Less exposed to drift and
# to other users of the machine than a ratio of two medians.
pairs=$dir/out/pairs.tsv # N A B median_ratio
awk -F'\t' '
    { w[$1, $2, $3] = $4; if (!($1 in seen)) { seen[$1]; ns[++nn] = $1 } if ($3 > reps) reps = $3 }
    function pair(n, a, b,   r, k, i, j, t, v) {
        k = 0
        for (r = 1; r <= reps; r++) if (w[n, a, r] > 0 && w[n, b, r] > 0) v[++k] = w[n, a, r] / w[n, b, r]
        if (!k) return
        for (i = 2; i <= k; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
        printf "%s\t%s\t%s\t%.4f\n", n, a, b, (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    END { for (i = 1; i <= nn; i++) { n = ns[i]
        pair(n, "rs-1", "query-floor"); pair(n, "rs-auto", "query-floor"); pair(n, "rs-auto", "rs-1")
        pair(n, "rs-text", "floor"); pair(n, "floor", "rs-auto")
        pair(n, "needrestart", "rs-auto"); pair(n, "checkrestart", "rs-auto")
        pair(n, "needrestart", "rs-1") } }' "$raw" >"$pairs"

# shellcheck disable=SC2016 # awk programs, not shell
common_awk='
    BEGIN { split(missing, miss, " "); for (i in miss) absent[miss[i]] }
    FILENAME == ARGV[1] { t[$1, $2] = $3 / 1000; next }
    FILENAME == ARGV[2] { u[$1, $2] = $3 / 1000; next }
    FILENAME == ARGV[3] { p[$1, $2, $3] = $4; next }
    { r[$1, $2] = $3 / 1024 }
    function gone(tool) { return tool in absent }
    function ms(v) { return v == "" ? "n/a" : (v < 100 ? sprintf("%.1f ms", v) : sprintf("%.0f ms", v)) }
    function mib(v) { return v == "" ? "n/a" : sprintf("%.1f MiB", v) }
    function x(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f×", a / b) : "n/a" }
    function px(n, a, b) { return gone(a) || gone(b) ? "not installed" : (p[n, a, b] == "" ? "n/a" : sprintf("%.2f×", p[n, a, b])) }
    function cell(v, tool, f) { return gone(tool) ? "not installed" : (f == "mib" ? mib(v) : ms(v)) }
    function ok(c) { return c ? "met" : "**missed**" }
    function row(a, N, f,   s, i, k) { s = "| " N; for (i = 1; i in cols; i++) { k = cols[i]; s = s " | " cell(a == "t" ? t[N, k] : (a == "u" ? u[N, k] : r[N, k]), k, f) }; return s " |" }
    BEGIN { split("floor query-floor rs-1 rs-auto rs-text rs-auto-plain needrestart checkrestart", cols, " ")
        head = "| N | text floor | query floor | rs auto, 1 thread | rs auto | rs text, 1 thread | rs auto, text report | needrestart | checkrestart |"
        rule = "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" }
'
table=$(awk -F'\t' -v ns="$ns" -v missing="${missing[*]}" "$common_awk"'
    END {
        split(ns, n, " ")
        print "Median wall time (lower is better; `rs` is `restart-stale status --json`, on as many threads as cores unless it says 1 thread):"
        print ""; print head; print rule
        for (i = 1; i in n; i++) print row("t", n[i])
        print ""
        print "Median CPU time, user and system, of the same runs:"
        print ""; print head; print rule
        for (i = 1; i in n; i++) print row("u", n[i])
        print ""
        print "Ratios pair by pair (each repetition'\''s A / B, then the median over repetitions):"
        print ""
        print "| N | 1 thread / query floor | rs auto / query floor | rs auto / 1 thread | text, 1 thread / text floor | text floor / rs auto | needrestart / rs auto | checkrestart / rs auto |"
        print "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for (i = 1; i in n; i++) { N = n[i]
            printf "| %d | %s | %s | %s | %s | %s | %s | %s |\n", N, px(N, "rs-1", "query-floor"), px(N, "rs-auto", "query-floor"),
                px(N, "rs-auto", "rs-1"), px(N, "rs-text", "floor"), px(N, "floor", "rs-auto"),
                px(N, "needrestart", "rs-auto"), px(N, "checkrestart", "rs-auto") }
        print ""
        print "The same processes before their libraries were replaced, so that nothing is stale: the scan"
        print "alone, without the per-process reads (name, executable) and report lines that every"
        print "stale process costs. Not the load the targets are judged on."
        print ""
        print "| N | text floor | rs auto | rs text, 1 thread | text floor / auto | text / text floor |"
        print "| ---: | ---: | ---: | ---: | ---: | ---: |"
        for (i = 1; i in n; i++) { N = n[i]
            printf "| %d | %s | %s | %s | %s | %s |\n", N, ms(t[N, "fresh-floor"]), ms(t[N, "fresh-rs-auto"]),
                ms(t[N, "fresh-rs-text"]), x(t[N, "fresh-floor"], t[N, "fresh-rs-auto"]),
                x(t[N, "fresh-rs-text"], t[N, "fresh-floor"]) }
        print ""
        print "Peak RSS (`/usr/bin/time -f %M`, one run each):"
        print ""; print head; print rule
        for (i = 1; i in n; i++) print row("r", n[i], "mib")
    }' "$medians" "$cpus" "$pairs" "$rss")

# The targets of issue 27, judged on this run from the pair-by-pair ratios.
verdicts=$(awk -F'\t' -v ns="$ns" -v missing="${missing[*]}" -v cpus="$(nproc)" "$common_awk"'
    END {
        split(ns, n, " ")
        for (i = 1; i in n; i++) { N = n[i]
            if (N >= 1000) { q = p[N, "rs-1", "query-floor"]
                printf "- N=%d: one thread ≤ 1.15× the PROCMAP_QUERY probe: %.2f× — %s\n", N, q, ok(q <= 1.15) }
            q = p[N, "rs-auto", "rs-1"]
            printf "- N=%d: parallel wall ≤ 0.65× one thread (%d CPUs): %.2f× — %s\n", N, cpus, q, ok(q <= 0.65)
            s = p[N, "rs-text", "floor"]
            printf "- N=%d: text scan on one thread ≤ 1.15× the text floor (issue 7): %.2f× — %s\n", N, s, ok(s <= 1.15)
            want = (N == 1000) ? 10 : 25
            if (gone("needrestart")) printf "- N=%d: ≥ %d× faster than needrestart: not installed\n", N, want
            else { z = p[N, "needrestart", "rs-auto"]
                printf "- N=%d: ≥ %d× faster than needrestart: %.1f× — %s\n", N, want, z, ok(z >= want)
                m = r[N, "rs-auto"] / r[N, "needrestart"]
                printf "- N=%d: peak RSS ≤ ¼ of needrestart'\''s: %.2f — %s\n", N, m, ok(m <= 0.25) }
        }
    }' "$medians" "$cpus" "$pairs" "$rss")

mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
nr_version=$(dpkg-query -W -f '${Version}' needrestart 2>/dev/null || echo '?')
dg_version=$(dpkg-query -W -f '${Version}' debian-goodies 2>/dev/null || echo '?')
rs_commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')
load_lines=$(awk '$2 == "maps_lines" { printf "%s%d: %d lines, %d of them stale", sep, $1, $3, $4; sep = "; " }' \
    "$dir/out/load.txt")
other_cpu=$(awk '$2 == "other_cpu" { printf "%s%d: %s%%", sep, $1, $3; sep = "; " }' "$dir/out/load.txt")

section=$(
    cat <<EOF
Run on $started, restart-stale $rs_commit (release build); $reps timed runs per tool and N, medians; K=$k libraries per process.

- Machine: $(nproc) CPUs ($cpu), $mem memory
- Kernel: $(uname -r)
- needrestart $nr_version, debian-goodies (checkrestart) $dg_version
- Load average (1, 5, 15 min) before the run: $load_before; after: $load_after (the after figure
  includes the benchmark's own thousands of exiting processes)
- CPU used by anything but the measured tools during the timed runs, as a share of all CPUs, by N: $other_cpu
  (includes this script's own bookkeeping; more than a few percent means someone else was busy)
- Lines in one holder's /proc/PID/maps, by N: $load_lines
${BENCH_NOTE:+- Note: $BENCH_NOTE
}
$table

Targets from issue 27 (and the text one of issue 7), judged on this run:

$verdicts
EOF
)

echo
echo "$section"

# Replace the generated part of the document and keep the prose around it.
begin='<!-- bench:begin (written by ci/bench/run.sh) -->'
end='<!-- bench:end -->'
printf '%s\n' "$section" >"$dir/out/section.md"
if [[ -f $out ]] && grep -qF "$begin" "$out"; then
    awk -v b="$begin" -v e="$end" -v f="$dir/out/section.md" '
        $0 == b { print; while ((getline l < f) > 0) print l; skip = 1; next }
        $0 == e { skip = 0 }
        !skip' "$out" >"$dir/out/doc.md"
    cat "$dir/out/doc.md" >"$out"
else
    printf '# Benchmarks\n\n%s\n%s\n%s\n' "$begin" "$section" "$end" >"$out"
fi
say "wrote $out"
