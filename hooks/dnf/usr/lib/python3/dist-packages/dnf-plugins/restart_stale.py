# restart-stale's dnf 4 plugin: after each transaction, restart-stale
# restarts (once dnf is done) the allowed services that still run code the
# transaction replaced. See /usr/share/doc/restart-stale/dnf.md.
#
# The plugin only collects and hands over. It takes the transaction's
# packages and their file lists from the rpmdb: the outgoing packages' lists
# in pre_transaction(), while the rpmdb still has them, the incoming ones in
# transaction(), after rpm ran. It writes them to a private temporary file
# and runs `/usr/bin/restart-stale dnf-hook transaction FILE` (no shell).
# It never raises into dnf: every failure is logged and swallowed.
#
# /etc/dnf/plugins/restart-stale.conf:
#   enabled=0          turns the plugin off
#   auto_restart=0     report in the journal instead of restarting

import logging
import os
import subprocess
import sys
import tempfile

import dnf
import dnf.transaction

BINARY = '/usr/bin/restart-stale'
# The format restart-stale's `dnf-hook transaction` reads.
HEADER = 'restart-stale-dnf-plugin 1'
# The binary only records the transaction and starts a unit, and gives up
# by itself after 25 s (a wedged systemd); this is the backstop, as apt's
# `timeout 30` is for the apt hooks.
TIMEOUT = 30

logger = logging.getLogger('dnf.plugin')


def _directions():
    """dnf's item actions that bring a package in, and those that take one
    out (the old side of an upgrade, downgrade or reinstall, obsoleted and
    removed packages). Reason changes touch no file."""
    into = set(dnf.transaction.FORWARD_ACTIONS)
    out = set(dnf.transaction.BACKWARD_ACTIONS)
    out.add(dnf.transaction.PKG_REINSTALLED)
    return into, out


def _nevra(pkg):
    epoch = pkg.epoch or 0
    return '%s-%s:%s-%s.%s' % (pkg.name, epoch, pkg.version, pkg.release, pkg.arch)


def _files(ts, pkg):
    """The file list of the installed package `pkg`, or None."""
    import rpm
    for hdr in ts.dbMatch('name', pkg.name):
        if (hdr[rpm.RPMTAG_VERSION] == pkg.version
                and hdr[rpm.RPMTAG_RELEASE] == pkg.release
                and (hdr[rpm.RPMTAG_ARCH] or '') == (pkg.arch or '')
                and (hdr[rpm.RPMTAG_EPOCH] or 0) == (pkg.epoch or 0)):
            return [os.fsdecode(f) for f in hdr[rpm.RPMTAG_FILENAMES]]
    return None


class RestartStale(dnf.Plugin):
    name = 'restart-stale'

    def __init__(self, base, cli):
        super(RestartStale, self).__init__(base, cli)
        self._outgoing = []  # (nevra, files or None), read before rpm ran
        self._auto_restart = True

    def config(self):
        try:
            conf = self.read_config(self.base.conf)
            if conf.has_option('main', 'auto_restart'):
                try:
                    self._auto_restart = conf.getboolean('main', 'auto_restart')
                except ValueError:
                    logger.warning('restart-stale: auto_restart in restart-stale.conf is not a '
                                   'boolean; reporting instead of restarting')
                    self._auto_restart = False
        except Exception as e:  # never into dnf
            logger.warning('restart-stale: cannot read restart-stale.conf: %s', e)

    def _here(self):
        # An --installroot is another system; its services are not running.
        return os.path.normpath(self.base.conf.installroot or '/') == '/'

    def pre_transaction(self):
        try:
            if not self._here():
                return
            import rpm
            into, out = _directions()
            ts = rpm.TransactionSet('/')
            self._outgoing = [(_nevra(tsi.pkg), _files(ts, tsi.pkg))
                              for tsi in self.base.transaction if tsi.action in out]
        except Exception as e:  # never into dnf
            logger.warning('restart-stale: cannot read the outgoing packages: %s', e)

    def transaction(self):
        try:
            if not self._here():
                logger.debug('restart-stale: --installroot given; not restarting anything')
                return
            if not os.access(BINARY, os.X_OK):
                logger.warning('restart-stale: %s is missing; not restarting services', BINARY)
                return
            self._hand_over(self._lines())
        except Exception as e:  # never into dnf
            logger.warning('restart-stale: services were not restarted: %s', e)

    def _lines(self):
        import rpm
        into, out = _directions()
        ts = rpm.TransactionSet('/')
        lines = [HEADER, 'pid %d' % os.getpid()]
        argv = [os.path.basename(sys.argv[0] or 'dnf')] + sys.argv[1:]
        lines.append('command ' + ' '.join(argv).replace('\n', ' '))
        lines.append('auto-restart %s' % ('true' if self._auto_restart else 'false'))
        lists = []
        for tsi in self.base.transaction:
            if tsi.action in into:
                nevra = _nevra(tsi.pkg)
                lines.append('package in ' + nevra)
                lists.append((nevra, _files(ts, tsi.pkg)))
        for nevra, files in self._outgoing:
            lines.append('package out ' + nevra)
            lists.append((nevra, files))
        for nevra, files in lists:
            if files is None:
                logger.debug('restart-stale: no file list for %s', nevra)
                continue
            # A path with a newline cannot be one line; no package ships one.
            lines.extend('file ' + f for f in files if '\n' not in f)
        return lines

    def _hand_over(self, lines):
        fd, path = tempfile.mkstemp(prefix='restart-stale-dnf.', suffix='.txt')
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(('\n'.join(lines) + '\n').encode('utf-8', 'surrogateescape'))
            done = subprocess.run([BINARY, 'dnf-hook', 'transaction', path],
                                  stdin=subprocess.DEVNULL, timeout=TIMEOUT, check=False)
            if done.returncode != 0:
                logger.warning('restart-stale: %s exited with status %d', BINARY, done.returncode)
        finally:
            os.unlink(path)
