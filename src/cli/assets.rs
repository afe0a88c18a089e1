//! The man page and shell completions, generated from the clap definition
//! for packaging (`restart-stale generate-assets DIR`).

use super::Cli;
use clap::CommandFactory;

/// Writes `restart-stale.1` and bash, zsh and fish completions into `dir`.
pub(crate) fn generate_assets(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use clap_complete::Shell;
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let cmd = Cli::command();
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut man)?;
    man.extend_from_slice(MAN_EXTRA.as_bytes());
    let page = dir.join("restart-stale.1");
    std::fs::write(&page, man).with_context(|| format!("failed to write {}", page.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd.clone(), "restart-stale", dir)
            .with_context(|| format!("failed to write {shell} completions into {}", dir.display()))?;
        log::debug!("wrote {}", path.display());
    }
    Ok(())
}

const MAN_EXTRA: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Nothing to do, or every planned restart was done.
.TP
\fB1\fR
A runtime error (unreadable input, D\-Bus failure).
.TP
\fB2\fR
Bad usage.
.TP
\fB3\fR
Restarts are needed but were not done (\fBstatus\fR, \fB\-n\fR), or an allowed
unit was not restarted after all and still runs stale code: it has leftover
processes a restart would not stop (\fBKillMode=process\fR), refuses manual stop,
cannot be stopped or started, or is a per\-connection instance of an
\fBAccept=yes\fR socket.
.TP
\fB4\fR
A restart failed, timed out, or left stale code running.
.TP
\fB5\fR
A restart failed or did not settle, and the health gate held the restarts of
every later wave (see \fB\-\-settle\fR).
.SH FILES
.TP
\fI/run/restart\-stale/lock\fR
Held while restarting, so only one instance restarts at a time. A second
instance waits 10 seconds, then gives up with an error naming the holder.
.TP
\fI/etc/restart\-stale/UNIT\fR
Admin policy: a symlink allows UNIT; a link to /dev/null denies it.
.TP
\fI/usr/share/restart\-stale/UNIT\fR
Distribution policy: a symlink allows UNIT.
.TP
\fI/etc/clr\-service\-restart\fR, \fI/usr/share/clr\-service\-restart\fR
clr\-service\-restart's directories, honoured with lower precedence: the first of
\fI/etc/restart\-stale\fR, \fI/etc/clr\-service\-restart\fR, \fI/usr/share/restart\-stale\fR,
\fI/usr/share/clr\-service\-restart\fR with a link for the unit (or its template)
decides. Directories not owned by root or writable by group or others, and
links not owned by root, are ignored with a warning.
.TP
\fI/etc/restart\-stale.conf\fR
Settings every package manager's hooks read, lines \fBkey = value\fR.
\fBauto\-restart = false\fR defers the restarts (see deferred.md); it is
the lasting switch for pacman, zypper and dnf 5.
.TP
\fI/etc/apt/apt.conf.d/50restart\-stale\fR
The apt hooks. \fBRestartStale::Auto\-Restart "false";\fR in another apt.conf.d file
defers the restarts (the units are marked for \fBrestart\-stale \-\-marked\fR,
see deferred.md); \fBRESTART_STALE_DEFER=1\fR in any package manager's
environment does the same for one run; \fBRestartStale::Reexec "false";\fR
keeps systemd (PID 1) from being re\-executed; \fBRESTART_STALE_SUSPEND=1\fR
in apt's environment skips the hooks for one run.
.TP
\fI/etc/needrestart/conf.d/restart\-stale.conf\fR
Keeps needrestart's own apt hook to listing while the apt hook restarts, so
a service is restarted once and apt never stops at needrestart's dialog;
needrestart acts as configured while \fBRestartStale::Auto\-Restart\fR is off
(the hook then leaves \fI/run/restart\-stale/apt/auto\-restart\-off\fR). See
needrestart.md.
.TP
\fI/var/lib/prometheus/node\-exporter/restart\-stale.prom\fR
The Prometheus textfile (status, restart and hook runs), when that directory
exists; \fB\-\-textfile\fR names another path.
.TP
\fI/run/reboot\-required\fR, \fI/run/reboot\-required.pkgs\fR
Written by a hook's run when a reboot is needed: a newer kernel, or a
never\-tier unit or PID 1 left on stale code.
.TP
\fI/proc/sys/kernel/osrelease\fR, \fI/boot/vmlinuz\-*\fR, \fI/usr/lib/modules/*/vmlinuz\fR, \fI/sys/kernel/livepatch/\fR
Read to compare the running kernel with the newest installed one.
.TP
\fI/etc/dnf/plugins/restart\-stale.conf\fR
The dnf 4 plugin: \fBenabled=0\fR turns it off, \fBauto_restart=0\fR turns
automatic restarts off while still reporting.
.TP
\fI/etc/dnf/libdnf5\-plugins/actions.d/restart\-stale.actions\fR
The dnf 5 hook; delete it to turn the hook off.
.TP
\fI/usr/share/libalpm/hooks/restart\-stale.hook\fR
The pacman hook.
.TP
\fI/run/restart\-stale/apt/\fR, \fI/run/restart\-stale/dnf/\fR, \fI/run/restart\-stale/pacman/\fR
Transactions recorded by the hooks and not yet acted on by
\fBrestart\-stale\-apt.service\fR, \fBrestart\-stale\-dnf.service\fR or
\fBrestart\-stale\-pacman.service\fR.
.TP
\fI/usr/bin/clr\-service\-restart\fR
A link to restart\-stale: invoked by that name it takes clr\-service\-restart's
command line (\fB\-n\fR, \fB\-a\fR, \fBallow\fR|\fBdisallow\fR|\fBdefault\fR \fIUNIT\fR),
and after a swupd update counts only the files the manifests changed.
.TP
\fI/var/lib/restart\-stale/swupd\-version\fR
The OS version clr\-service\-restart last acted at.
.TP
\fI/var/log/apt/history.log\fR*, \fI/var/log/dpkg.log\fR*, \fI/var/lib/dnf/history.sqlite\fR, \fI/usr/lib/sysimage/libdnf5/transaction_history.sqlite\fR, \fI/var/lib/swupd/\fR
Read by \fBreplay\fR to find what a past transaction changed.
"#;
