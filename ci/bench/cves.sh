#!/bin/bash
# ci/bench/cves.sh: what the fixes annotation (docs/cves.md) adds to a
# finish, for an upgrade of N (40) packages whose libraries a unit still
# maps. A copy of the replay test system (tests/replay/root) gets N real
# packages of this host: their dpkg lists, their changelog.Debian.gz, one
# upgrade line each in dpkg.log (from the version of the changelog's
# second entry to the installed one) and one stale mapping each in pid
# 601 (a.service). Then `restart-stale replay --dpkg-log` runs in it
# (RESTART_STALE_ROOT) with the changelogs there and with them removed
# (each package's fixes then `unknown: no changelog installed`, found
# without reading one): the difference is the reading and parsing of the
# changelogs; both runs look up the owners in the lists.
#
# No root needed. Run from the checkout after `cargo build --release`:
#   ci/bench/cves.sh
#   BENCH_N=40 BENCH_REPS=21 ci/bench/cves.sh
# Prints the median wall time of each variant and the changelogs' total
# size. Settings (environment): BENCH_N (40), BENCH_REPS (21), BENCH_RS
# (the binary, target/release/restart-stale).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
n=${BENCH_N:-40}
reps=${BENCH_REPS:-21}
rs=${BENCH_RS:-$repo/target/release/restart-stale}
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

die() { echo "cves.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

[[ -x $rs ]] || die "no $rs: cargo build --release first"
command -v dpkg-query >/dev/null || die "needs a Debian system (dpkg-query)"

work=$(mktemp -d)
trap '[[ -n ${BENCH_KEEP:-} ]] || rm -rf "$work"' EXIT
root=$work/root
cp -a "$repo/tests/replay/root" "$root"
# The templates' device and inode numbers, as tests/util/fixture.rs
# fills them in: those of the copied file.
devof() { printf '%02x:%02x' "$(stat -c %Hd "$1")" "$(stat -c %Ld "$1")"; }
fill() {
    local line path
    while IFS= read -r line; do
        while [[ $line =~ \{(dev|ino):([^}]*)\} ]]; do
            path=$root/${BASH_REMATCH[2]}
            if [[ ${BASH_REMATCH[1]} == dev ]]; then
                line=${line/"${BASH_REMATCH[0]}"/$(devof "$path")}
            else
                line=${line/"${BASH_REMATCH[0]}"/$(stat -c %i "$path")}
            fi
        done
        printf '%s\n' "$line"
    done <"$1"
}
find "$root" -name '*.in' | while read -r f; do
    out=${f%.in}
    if [[ $out == *.gz ]]; then
        fill "$f" | gzip -n >"$out"
    else
        fill "$f" >"$out"
    fi
    rm -f "$f"
done
rootdev=$(devof "$root")

# N packages of this host that ship a shared library in the multiarch
# directory and a changelog with at least two entries.
picked=0
: >"$work/log"
for lib in /usr/lib/"$multiarch"/lib*.so.*; do
    ((picked < n)) || break
    [[ -f $lib && ! -L $lib ]] || continue
    owner=$(dpkg-query -S "$lib" 2>/dev/null | head -n 1) || continue
    qual=${owner%%: *}
    [[ -n $qual && $qual != *", "* && $qual != diversion* ]] || continue
    pkg=${qual%%:*}
    grep -q "^$qual " "$work/log" 2>/dev/null && continue
    cl=/usr/share/doc/$pkg/changelog.Debian.gz
    [[ -f $cl ]] || continue
    old=$(zcat "$cl" | sed -nE 's/^[a-z0-9][^ ]* \(([^)]+)\) .*;.*$/\1/p' | sed -n 2p)
    new=$(dpkg-query -W -f='${Version}' "$qual")
    [[ -n $old && -n $new ]] || continue
    list=/var/lib/dpkg/info/$qual.list
    [[ -f $list ]] || list=/var/lib/dpkg/info/$pkg.list
    [[ -f $list ]] || continue
    mkdir -p "$root/usr/share/doc/$pkg"
    cp "$cl" "$root/usr/share/doc/$pkg/"
    cp "$list" "$root/var/lib/dpkg/info/$(basename "$list")"
    printf '%s %s %s\n' "$qual" "$old" "$new" >>"$work/log"
    # The new copy on disk (the set holds files that exist), and the old
    # one mapped, deleted by the upgrade's unpack.
    mkdir -p "$root$(dirname "$lib")"
    : >"$root$lib"
    printf '7f%04x000-7f%04x100 r-xp 00000000 %s %s %s (deleted)\n' "$picked" "$picked" \
        "$rootdev" $((4000000100 + picked)) "$lib" >>"$root/proc/601/maps"
    picked=$((picked + 1))
done
((picked == n)) || die "found only $picked suitable packages, not $n"
while read -r qual old new; do
    printf '2026-11-23 10:00:00 upgrade %s %s %s\n' "$qual" "$old" "$new"
done <"$work/log" >>"$root/var/log/dpkg.log"
size=$(cat "$root"/usr/share/doc/*/changelog.Debian.gz | wc -c)
raw=$(cat "$root"/usr/share/doc/*/changelog.Debian.gz | zcat | wc -c)
say "$n packages, changelogs $((size / 1024)) KiB compressed, $((raw / 1024)) KiB of text"

run() {
    RESTART_STALE_ROOT=$root "$rs" replay --dpkg-log --since 2026-11-23 -n 2>/dev/null || true
}
# The run must have annotated the packages it was given.
shown=$(run | grep -c 'fixes still live:' || true)
((shown > 0)) || die "the report names no fixes: the bench root is wrong"

median_ms() {
    local i t0 t1 times=()
    for ((i = 0; i < reps; i++)); do
        t0=$(date +%s%N)
        run >/dev/null
        t1=$(date +%s%N)
        times+=($(((t1 - t0) / 1000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f\n", v[int((NR + 1) / 2)] / 1000 }'
}
with=$(median_ms)
mv "$root/usr/share/doc" "$work/doc"
without=$(median_ms)
mv "$work/doc" "$root/usr/share/doc"
printf 'packages: %s\nwith changelogs: %s ms\nwithout changelogs: %s ms\n' "$n" "$with" "$without"
awk -v a="$with" -v b="$without" 'BEGIN { printf "changelogs add: %.1f ms\n", a - b }'
