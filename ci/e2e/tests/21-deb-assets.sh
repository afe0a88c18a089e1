#!/usr/bin/env bash
# What the .deb installs (issue 4, "Done when" 4): the man page, the shell
# completions, the apt hook snippet and the docs are where Debian expects
# them, owned by the package, and usable. minbase has no man-db, so the man
# page is checked as a file (gzip, a roff page with an EXIT STATUS section
# naming every documented code) rather than with `man -w`.
set -euo pipefail
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

MAN=/usr/share/man/man1/restart-stale.1.gz
BASH_COMP=/usr/share/bash-completion/completions/restart-stale
ZSH_COMP=/usr/share/zsh/vendor-completions/_restart-stale
FISH_COMP=/usr/share/fish/vendor_completions.d/restart-stale.fish
APT_CONF=/etc/apt/apt.conf.d/50restart-stale

t() {
    local m=$1 files f man section code
    e2e_step "install restart-stale" e2e_require_tool "$m"

    files=$(e2e_in "$m" dpkg -L restart-stale)
    for f in /usr/bin/restart-stale "$MAN" "$BASH_COMP" "$ZSH_COMP" "$FISH_COMP" "$APT_CONF" \
        /usr/share/doc/restart-stale/apt.md /usr/share/restart-stale; do
        assert_line "$files" "^${f//./\\.}\$" "dpkg -L restart-stale"
        e2e_in "$m" test -e "$f" || fail "$f is in the package but not on disk"
    done
    for f in "$MAN" "$BASH_COMP" "$ZSH_COMP" "$FISH_COMP" "$APT_CONF"; do
        e2e_in "$m" test -s "$f" || fail "$f is empty"
        assert_eq "-rw-r--r-- root root" "$(e2e_in "$m" stat -c '%A %U %G' "$f")" "mode of $f"
    done
    # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
    assert_contains "$(e2e_in "$m" dpkg-query -W -f='${Conffiles}' restart-stale)" "$APT_CONF" "conffiles"

    man=$(e2e_in "$m" zcat "$MAN")
    assert_line "$man" '^\.TH "?restart-stale"? 1' "man page"
    assert_line "$man" '^\.SH "?EXIT STATUS"?' "man page"
    section=$(sed -n '/^\.SH "\{0,1\}EXIT STATUS/,/^\.SH/p' <<<"$man")
    for code in 0 1 2 3 4; do
        assert_line "$section" "^\\\\fB$code\\\\fR\$" "EXIT STATUS section"
    done
    # 10-restart.sh relies on this meaning of 4.
    assert_contains "$(sed -n '/^\\fB4\\fR$/{n;p}' <<<"$section")" "restart failed" "meaning of exit status 4"

    # The completions load in their shell and name our subcommands.
    assert_contains "$(e2e_in "$m" bash -c ". $BASH_COMP && complete -p restart-stale")" \
        "restart-stale" "complete -p after sourcing $BASH_COMP"
    assert_line "$(e2e_in "$m" head -n 1 "$ZSH_COMP")" '^#compdef restart-stale' "$ZSH_COMP"
    assert_contains "$(e2e_in "$m" cat "$FISH_COMP")" "complete -c restart-stale" "$FISH_COMP"
    for f in "$BASH_COMP" "$ZSH_COMP" "$FISH_COMP"; do
        assert_contains "$(e2e_in "$m" cat "$f")" "disallow" "$f"
    done

    assert_line "$(e2e_in "$m" cat "$APT_CONF")" '^DPkg::Post-Invoke ' "$APT_CONF"
    assert_line "$(e2e_in "$m" restart-stale --version)" '^restart-stale [0-9]' "restart-stale --version"

    # Purge removes the state it wrote at run time (postrm), and nothing
    # of it is left to surprise a later install.
    e2e_in "$m" mkdir -p /var/lib/restart-stale/spool/apt /run/restart-stale/apt
    e2e_in "$m" touch /var/lib/restart-stale/spool/apt/pending
    e2e_in "$m" dpkg --purge restart-stale >/dev/null
    assert_eq "gone gone" "$(e2e_in "$m" sh -c 'for d in /var/lib/restart-stale /run/restart-stale; do [ -e $d ] && echo left || echo gone; done' | xargs)" "state after purge"
    e2e_require_tool "$m"
}
e2e_test_main t
