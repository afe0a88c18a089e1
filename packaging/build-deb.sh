#!/usr/bin/env bash
# Builds the restart-stale .deb and prints its path on the last line.
#
#   packaging/build-deb.sh [extra cargo-deb options, e.g. --fast]
#
# Needs cargo-deb (`cargo install cargo-deb --locked`) and, for the
# automatic Depends line, dpkg-dev. The asset list is [package.metadata.deb]
# in Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
[[ -n $target_dir ]] || { echo "build-deb.sh: cannot find cargo's target directory" >&2; exit 1; }

cargo build --release --locked
# The man page and completions come from the CLI definition of the binary
# just built. cargo-deb maps the target/release/ prefix of the asset paths
# in Cargo.toml onto $target_dir/release/.
assets=$target_dir/release/assets
rm -rf "$assets"
"$target_dir/release/restart-stale" generate-assets "$assets"
# Debian policy wants man pages gzipped; cargo-deb leaves files from the
# target directory as they are.
gzip -9n "$assets/restart-stale.1"

cargo deb --no-build --locked "$@" >"$target_dir/build-deb.out"
# cargo deb prints the .deb (and the -dbgsym .ddeb) it wrote.
deb=$(grep '\.deb$' "$target_dir/build-deb.out" | tail -n 1)
[[ -f $deb ]] || { echo "build-deb.sh: cargo deb did not report a .deb:" >&2; cat "$target_dir/build-deb.out" >&2; exit 1; }
echo "$deb"
