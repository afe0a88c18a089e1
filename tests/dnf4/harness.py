"""Runs the shipped dnf 4 plugin without dnf: stand-ins for the `dnf` and
`rpm` modules, a transaction of TsItems, and the plugin's hooks in dnf's
order (config, pre_transaction, the rpm transaction, transaction).

    python3 harness.py PLUGIN BINARY SCENARIO

SCENARIO: upgrade | missing-binary | broken-rpmdb. The plugin's log
records go to stderr as "LEVEL message"; exceptions escaping a hook fail
the run (exit 3), which is what the plugin must never let happen.
"""
import importlib.util
import logging
import sys
import types

plugin_path, binary, scenario = sys.argv[1:4]

# libdnf's TransactionItemAction values (libdnf/transaction/Types.hpp).
INSTALL, DOWNGRADE, DOWNGRADED, OBSOLETE, OBSOLETED = 1, 2, 3, 4, 5
UPGRADE, UPGRADED, REMOVE, REINSTALL, REINSTALLED, REASON_CHANGE = 6, 7, 8, 9, 10, 11

dnf = types.ModuleType('dnf')
dnf_transaction = types.ModuleType('dnf.transaction')
dnf_transaction.FORWARD_ACTIONS = [INSTALL, DOWNGRADE, OBSOLETE, UPGRADE, REINSTALL]
dnf_transaction.BACKWARD_ACTIONS = [DOWNGRADED, OBSOLETED, UPGRADED, REMOVE]
dnf_transaction.PKG_REINSTALLED = REINSTALLED
dnf.transaction = dnf_transaction


class Plugin(object):
    def __init__(self, base, cli):
        self.base = base
        self.cli = cli

    @classmethod
    def read_config(cls, conf):
        import configparser
        parser = configparser.ConfigParser()
        parser.read_string('[main]\nenabled=1\nauto_restart=0\n')
        return parser


dnf.Plugin = Plugin
sys.modules['dnf'] = dnf
sys.modules['dnf.transaction'] = dnf_transaction

rpm = types.ModuleType('rpm')
rpm.RPMTAG_VERSION, rpm.RPMTAG_RELEASE, rpm.RPMTAG_ARCH = 'version', 'release', 'arch'
rpm.RPMTAG_EPOCH, rpm.RPMTAG_FILENAMES = 'epoch', 'filenames'
RPMDB = {}  # name -> [header dict]


class TransactionSet(object):
    def __init__(self, root='/'):
        assert root == '/', root

    def dbMatch(self, tag, value):
        assert tag == 'name', tag
        if scenario == 'broken-rpmdb':
            raise RuntimeError('rpmdb open failed')
        return list(RPMDB.get(value, []))


rpm.TransactionSet = TransactionSet
sys.modules['rpm'] = rpm


class Pkg(object):
    def __init__(self, name, epoch, version, release, arch):
        self.name, self.epoch, self.version, self.release, self.arch = name, epoch, version, release, arch


class TsItem(object):
    def __init__(self, action, pkg):
        self.action, self.pkg = action, pkg


def install(pkg, files):
    RPMDB.setdefault(pkg.name, []).append({
        'version': pkg.version, 'release': pkg.release, 'arch': pkg.arch,
        'epoch': pkg.epoch or None, 'filenames': files})


def erase(pkg):
    RPMDB[pkg.name] = [h for h in RPMDB.get(pkg.name, []) if h['version'] != pkg.version]


lib1 = Pkg('libdemo', 0, '1.0', '1', 'x86_64')
lib2 = Pkg('libdemo', 0, '2.0', '1', 'x86_64')
other = Pkg('other', 0, '1', '1', 'x86_64')
bash = Pkg('bash', 0, '5.2', '1', 'x86_64')
install(lib1, ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu/libdemo.so.1',
               '/lib/x86_64-linux-gnu/libdemo.so.1.0'])
install(other, ['/usr/sbin/other'])
install(bash, ['/usr/bin/bash'])

base = types.SimpleNamespace(
    conf=types.SimpleNamespace(installroot='/'),
    transaction=[TsItem(UPGRADE, lib2), TsItem(UPGRADED, lib1), TsItem(REMOVE, other),
                 TsItem(REASON_CHANGE, bash)])

logging.basicConfig(stream=sys.stderr, format='%(levelname)s %(message)s', level=logging.DEBUG)

spec = importlib.util.spec_from_file_location('restart_stale', plugin_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.BINARY = binary if scenario != 'missing-binary' else '/nonexistent/restart-stale'

plugin = module.RestartStale(base, None)
try:
    plugin.config()
    plugin.pre_transaction()
    erase(lib1)
    erase(other)
    install(lib2, ['/lib/x86_64-linux-gnu/libdemo.so.1'])
    plugin.transaction()
except BaseException as e:
    print('ESCAPED %r' % e, file=sys.stderr)
    sys.exit(3)
