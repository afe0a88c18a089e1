#!/usr/bin/env bash
# Builds the restart-stale rpm with rpmbuild and prints its path on the last
# line.
#
#   packaging/rpm/build-rpm.sh [--prebuilt DIR] OUTDIR
#
# Without --prebuilt: the cargo-rpm-macros build (Fedora and friends):
# vendors the crates with `cargo vendor` and lets rpmbuild run cargo.
# With --prebuilt DIR: packages DIR/restart-stale and DIR/assets/ (from
# `restart-stale generate-assets`) as they are, for an rpmbuild without
# cargo-rpm-macros, such as Debian's `rpm` package in the e2e test bed.
# There rpm's brp scripts are turned off (__os_install_post), as they
# expect Fedora's tooling, and so are the debuginfo subpackage and the
# /usr/lib/.build-id links (which would belong to it).
set -euo pipefail

prebuilt=
if [[ ${1:-} == --prebuilt ]]; then
    prebuilt=$(realpath "${2:?--prebuilt needs a directory}")
    shift 2
fi
out=${1:?usage: build-rpm.sh [--prebuilt DIR] OUTDIR}
mkdir -p "$out"
out=$(realpath "$out")
cd "$(dirname "$0")/../.."

command -v rpmbuild >/dev/null || { echo "build-rpm.sh: rpmbuild not found" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[[ -n $version ]] || { echo "build-rpm.sh: no version in Cargo.toml" >&2; exit 1; }
name=restart-stale
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}

# The source tree as it is here (a checkout or a copy), without build
# output and caches.
tar --exclude=./target --exclude=./.git --exclude=./ci/e2e/.cache \
    --transform "s,^\.,$name-$version," -czf "$top/SOURCES/$name-$version.tar.gz" .

args=(--define "_topdir $top")
if [[ -n $prebuilt ]]; then
    for f in "$name" assets/$name.1 assets/$name.bash assets/_$name assets/$name.fish; do
        [[ -f $prebuilt/$f ]] || { echo "build-rpm.sh: $prebuilt/$f is missing" >&2; exit 1; }
    done
    tar -C "$prebuilt" --transform 's,^\.,prebuilt,' -czf "$top/SOURCES/$name-$version-prebuilt.tar.gz" .
    args+=(--with prebuilt --define "__os_install_post %{nil}" --define "debug_package %{nil}"
        --define "_build_id_links none")
else
    cargo vendor --locked --versioned-dirs vendor-rpm >/dev/null
    tar --transform 's,^vendor-rpm,vendor,' -cJf "$top/SOURCES/$name-$version-vendor.tar.xz" vendor-rpm
    rm -rf vendor-rpm
fi

rpmbuild -bb "${args[@]}" packaging/rpm/$name.spec >"$top/rpmbuild.log" 2>&1 || {
    tail -n 40 "$top/rpmbuild.log" >&2
    echo "build-rpm.sh: rpmbuild failed" >&2
    exit 1
}
rpm=$(find "$top/RPMS" -name "$name-$version-*.rpm" ! -name '*debug*' | head -n 1)
[[ -f $rpm ]] || { echo "build-rpm.sh: rpmbuild made no $name rpm" >&2; exit 1; }
cp "$rpm" "$out/"
echo "$out/$(basename "$rpm")"
