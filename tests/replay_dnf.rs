//! `replay --dnf-transaction` against history databases this test creates
//! with dnf4's and dnf5's real schemas (`tests/replay/dnf/*.sql`), and a
//! fake rpmdb in place of `rpm -ql`.

use restart_stale::managers::dnf::history::{self, Selector, DNF4_DB, DNF5_DB};
use restart_stale::managers::rpm::{FileLister, Listing};
use restart_stale::managers::{self, Source};
use restart_stale::system::sysroot::SysRoot;
use rusqlite::{params, Connection, ToSql};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// An rpmdb that knows a few NEVRAs and records what it was asked.
struct FakeRpm {
    asked: RefCell<Vec<String>>,
}

impl FakeRpm {
    fn new() -> Self {
        Self {
            asked: RefCell::new(Vec::new()),
        }
    }

    fn files(nevra: &str) -> Option<&'static [&'static str]> {
        Some(match nevra {
            "glibc-2.40-3.fc41.x86_64" => &["/usr/lib64", "/usr/lib64/libc.so.6", "/usr/sbin/ldconfig"],
            "glibc-2.40-3.fc41.i686" => &["/usr/lib/libc.so.6"],
            "demo-1.0-1.fc41.x86_64" => &["/usr/bin/demo"],
            "nginx-core-1.26.2-1.fc41.x86_64" => &["/usr/sbin/nginx"],
            _ => return None,
        })
    }
}

impl FileLister for FakeRpm {
    fn list(&self, _root: &SysRoot, nevras: &[String]) -> anyhow::Result<Listing> {
        self.asked.borrow_mut().extend(nevras.iter().cloned());
        let mut l = Listing::default();
        for n in nevras {
            match Self::files(n) {
                Some(files) => l.files.extend(files.iter().map(|f| f.to_string())),
                None => l.not_installed.push(n.clone()),
            }
        }
        Ok(l)
    }

    fn installed(&self, _root: &SysRoot, queries: &[String]) -> anyhow::Result<Listing> {
        // Replay takes both sides of a transaction from dnf's history.
        anyhow::bail!("replay asked the rpmdb which packages {queries:?} are")
    }
}

fn schema(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/replay/dnf")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

/// A root holding an empty history database at `db` with `schema_file`.
fn create_db(root: &Path, db: &str, schema_file: &str) -> Connection {
    let path = SysRoot::new(root).path(db);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&schema(schema_file)).unwrap();
    // A directory in the root: rpm lists directories, the set leaves them out.
    std::fs::create_dir_all(root.join("usr/lib64")).unwrap();
    conn
}

/// One rpm item of a transaction; `epoch` may be a deliberately wrong type.
struct Rpm<'a> {
    name: &'a str,
    epoch: &'a dyn ToSql,
    version: &'a str,
    release: &'a str,
    arch: &'a str,
    action: i64,
}

fn rpm<'a>(name: &'a str, version: &'a str, release: &'a str, arch: &'a str, action: i64) -> Rpm<'a> {
    Rpm {
        name,
        epoch: &0,
        version,
        release,
        arch,
        action,
    }
}

fn add_dnf4(conn: &Connection, trans: i64, begin: i64, cmdline: &str, items: &[Rpm]) {
    conn.execute(
        "INSERT INTO trans (id, dt_begin, dt_end, releasever, user_id, cmdline, state) VALUES (?1, ?2, ?3, '41', 0, ?4, 1)",
        params![trans, begin, begin + 20, cmdline],
    )
    .unwrap();
    for r in items {
        conn.execute("INSERT INTO item (item_type) VALUES (1)", []).unwrap();
        let item = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO rpm (item_id, name, epoch, version, release, arch) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![item, r.name, r.epoch, r.version, r.release, r.arch],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO trans_item (trans_id, item_id, repo_id, action, reason, state) VALUES (?1, ?2, NULL, ?3, 2, 1)",
            params![trans, item, r.action],
        )
        .unwrap();
    }
}

fn add_dnf5(conn: &Connection, trans: i64, begin: i64, description: &str, items: &[Rpm]) {
    conn.execute(
        "INSERT INTO trans (id, dt_begin, dt_end, releasever, user_id, description, state_id) VALUES (?1, ?2, ?3, '41', 0, ?4, 2)",
        params![trans, begin, begin + 20, description],
    )
    .unwrap();
    for r in items {
        conn.execute("INSERT OR IGNORE INTO pkg_name (name) VALUES (?1)", [r.name])
            .unwrap();
        conn.execute("INSERT OR IGNORE INTO arch (name) VALUES (?1)", [r.arch])
            .unwrap();
        conn.execute("INSERT INTO item DEFAULT VALUES", []).unwrap();
        let item = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO rpm (item_id, name_id, epoch, version, release, arch_id)
             SELECT ?1, n.id, ?2, ?3, ?4, a.id FROM pkg_name n, arch a WHERE n.name = ?5 AND a.name = ?6",
            params![item, r.epoch, r.version, r.release, r.name, r.arch],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO trans_item (trans_id, item_id, repo_id, action_id, reason_id, state_id) VALUES (?1, ?2, NULL, ?3, 2, 2)",
            params![trans, item, r.action],
        )
        .unwrap();
    }
}

/// dnf4 actions (libdnf Types.hpp).
const D4_INSTALL: i64 = 1;
const D4_UPGRADE: i64 = 6;
const D4_UPGRADED: i64 = 7;
const D4_REMOVE: i64 = 8;
const D4_REASON_CHANGE: i64 = 11;

/// dnf5 actions (trans_item_action).
const D5_INSTALL: i64 = 1;
const D5_UPGRADE: i64 = 2;
const D5_REMOVE: i64 = 5;
const D5_REPLACED: i64 = 6;
const D5_REASON_CHANGE: i64 = 7;

fn dnf4_system(root: &Path) {
    let c = create_db(root, DNF4_DB, "dnf4-schema.sql");
    add_dnf4(
        &c,
        1,
        1_790_000_000,
        "install demo",
        &[rpm("demo", "1.0", "1.fc41", "x86_64", D4_INSTALL)],
    );
    add_dnf4(
        &c,
        2,
        1_790_086_400,
        "upgrade -y",
        &[
            rpm("glibc", "2.40", "3.fc41", "x86_64", D4_UPGRADE),
            rpm("glibc", "2.40", "2.fc41", "x86_64", D4_UPGRADED),
            rpm("glibc", "2.40", "3.fc41", "i686", D4_UPGRADE),
            rpm("glibc", "2.40", "2.fc41", "i686", D4_UPGRADED),
            Rpm {
                epoch: &1,
                ..rpm("openssl-libs", "3.2.2", "9.fc41", "x86_64", D4_UPGRADE)
            },
            Rpm {
                epoch: &1,
                ..rpm("openssl-libs", "3.2.2", "8.fc41", "x86_64", D4_UPGRADED)
            },
            rpm("oldpkg", "0.9", "1.fc41", "noarch", D4_REMOVE),
            rpm("bash", "5.2.32", "1.fc41", "x86_64", D4_REASON_CHANGE),
            Rpm {
                epoch: &"x",
                ..rpm("broken", "1", "1", "x86_64", D4_INSTALL)
            },
        ],
    );
}

fn replay(root: &Path, sel: Selector) -> (anyhow::Result<restart_stale::replay::Replay>, Vec<String>) {
    let fake = FakeRpm::new();
    let r = managers::replay(&SysRoot::new(root), &Source::Dnf(sel), &fake);
    let asked = fake.asked.borrow().clone();
    (r, asked)
}

#[test]
fn dnf4_last_transaction_lists_what_came_in() {
    let tmp = tempfile::tempdir().unwrap();
    dnf4_system(tmp.path());
    let db = std::fs::read(tmp.path().join(DNF4_DB.trim_start_matches('/'))).unwrap();
    let (r, asked) = replay(tmp.path(), Selector::Last(0));
    let r = r.unwrap();
    // Only the packages that came in, multilib both arches, no epoch in the query.
    assert_eq!(
        asked,
        [
            "glibc-2.40-3.fc41.x86_64",
            "glibc-2.40-3.fc41.i686",
            "openssl-libs-3.2.2-9.fc41.x86_64"
        ]
    );
    assert_eq!(r.set.len(), 3, "{:?}", r.set);
    for f in ["/usr/lib64/libc.so.6", "/usr/sbin/ldconfig", "/usr/lib/libc.so.6"] {
        assert!(r.set.contains(f), "{f}");
    }
    assert!(!r.set.contains("/usr/lib64"), "directories are left out");
    // Removed, and upgraded but gone from the rpmdb since.
    assert_eq!(
        r.unknown,
        ["oldpkg-0.9-1.fc41.noarch", "openssl-libs-3.2.2-9.fc41.x86_64"]
    );
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].starts_with("/var/lib/dnf/history.sqlite: transaction 2: item 9:"),
        "{:?}",
        r.warnings
    );
    assert!(r.described[0].contains("dnf transaction 2 of ") && r.described[0].contains("(upgrade -y)"));
    assert!(r.described[0].contains(DNF4_DB));
    let after = std::fs::read(tmp.path().join(DNF4_DB.trim_start_matches('/'))).unwrap();
    assert!(db == after, "the history database was opened read-only");
}

#[test]
fn dnf4_selects_by_id_and_last_n() {
    let tmp = tempfile::tempdir().unwrap();
    dnf4_system(tmp.path());
    for sel in [Selector::Id(1), Selector::Last(1)] {
        let (r, asked) = replay(tmp.path(), sel);
        let r = r.unwrap();
        assert_eq!(asked, ["demo-1.0-1.fc41.x86_64"], "{sel:?}");
        assert!(r.set.contains("/usr/bin/demo"));
    }
    for (sel, msg) in [
        (Selector::Id(9), "/var/lib/dnf/history.sqlite has no transaction 9"),
        (
            Selector::Last(2),
            "/var/lib/dnf/history.sqlite has no transaction last-2",
        ),
    ] {
        let err = replay(tmp.path(), sel).0.unwrap_err();
        assert_eq!(err.to_string(), msg);
    }
}

fn dnf5_system(root: &Path, begin: i64) {
    let c = create_db(root, DNF5_DB, "dnf5-schema.sql");
    add_dnf5(
        &c,
        7,
        begin,
        "dnf5 upgrade nginx",
        &[
            rpm("nginx-core", "1.26.2", "1.fc41", "x86_64", D5_UPGRADE),
            rpm("nginx-core", "1.26.1", "3.fc41", "x86_64", D5_REPLACED),
            rpm("demo", "1.0", "1.fc41", "x86_64", D5_INSTALL),
            rpm("retired", "2.0", "1.fc41", "noarch", D5_REMOVE),
            rpm("bash", "5.2.32", "1.fc41", "x86_64", D5_REASON_CHANGE),
        ],
    );
}

#[test]
fn dnf5_last_transaction_lists_what_came_in() {
    let tmp = tempfile::tempdir().unwrap();
    dnf5_system(tmp.path(), 1_790_100_000);
    let (r, asked) = replay(tmp.path(), Selector::Last(0));
    let r = r.unwrap();
    assert_eq!(asked, ["nginx-core-1.26.2-1.fc41.x86_64", "demo-1.0-1.fc41.x86_64"]);
    assert!(r.set.contains("/usr/sbin/nginx") && r.set.contains("/usr/bin/demo"));
    assert_eq!(r.unknown, ["retired-2.0-1.fc41.noarch"]);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.described[0].contains("dnf transaction 7") && r.described[0].contains(DNF5_DB));
    assert!(replay(tmp.path(), Selector::Id(7)).0.is_ok());
}

#[test]
fn with_both_databases_the_one_written_last_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    dnf4_system(tmp.path());
    dnf5_system(tmp.path(), 1_790_100_000);
    let root = SysRoot::new(tmp.path());
    assert_eq!(history::pick(&root).unwrap().0, DNF5_DB);
    let tmp = tempfile::tempdir().unwrap();
    dnf4_system(tmp.path());
    dnf5_system(tmp.path(), 1_700_000_000);
    assert_eq!(history::pick(&SysRoot::new(tmp.path())).unwrap().0, DNF4_DB);
}

#[test]
fn a_database_of_another_kind_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = SysRoot::new(tmp.path()).path(DNF5_DB);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let err = replay(tmp.path(), Selector::Last(0)).0.unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(DNF5_DB) && msg.contains("not a dnf history database"),
        "{msg}"
    );
    std::fs::write(&path, b"SQLite format 3\0 but garbage after the header").unwrap();
    let err = replay(tmp.path(), Selector::Last(0)).0.unwrap_err();
    assert!(format!("{err:#}").contains(DNF5_DB), "{err:#}");
}
