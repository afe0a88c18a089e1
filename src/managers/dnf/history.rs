//! dnf's transaction history, an SQLite database opened read-only.
//!
//! - dnf4 (libdnf `libdnf/transaction/sql/create_tables.sql`,
//!   `/var/lib/dnf/history.sqlite`): `trans(id, dt_begin, cmdline, …)`,
//!   `trans_item(trans_id, item_id, action, …)`,
//!   `rpm(item_id, name, epoch, version, release, arch)`. Actions
//!   (`Types.hpp`): 1 install, 2 downgrade, 3 downgraded, 4 obsolete,
//!   5 obsoleted, 6 upgrade, 7 upgraded, 8 remove, 9 reinstall,
//!   10 reinstalled, 11 reason change.
//! - dnf5 (`libdnf5/transaction/db/sql/create_tables.sql`,
//!   `/usr/lib/sysimage/libdnf5/transaction_history.sqlite`):
//!   `trans(id, dt_begin, description, …)`,
//!   `trans_item(trans_id, item_id, action_id, …)`,
//!   `rpm(item_id, name_id → pkg_name, epoch, version, release, arch_id → arch)`.
//!   Actions (`trans_item_action`): 1 Install, 2 Upgrade, 3 Downgrade,
//!   4 Reinstall, 5 Remove, 6 Replaced, 7 Reason Change.

use crate::managers::rpm::FileLister;
use crate::replay::stamp::Stamp;
use crate::replay::Replay;
use crate::system::sysroot::SysRoot;
use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::str::FromStr;
use std::time::Duration;

pub const DNF5_DB: &str = "/usr/lib/sysimage/libdnf5/transaction_history.sqlite";
pub const DNF4_DB: &str = "/var/lib/dnf/history.sqlite";

/// `--dnf-transaction`: an ID, `last`, or `last-N` (N before the last),
/// as `dnf history info` takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    Id(i64),
    Last(u32),
}

impl FromStr for Selector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a transaction: use an ID, last or last-N");
        let digits = |d: &str| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit());
        if s == "last" {
            return Ok(Selector::Last(0));
        }
        if let Some(n) = s.strip_prefix("last-").filter(|n| digits(n)) {
            return n.parse().map(Selector::Last).map_err(|_| bad());
        }
        match s.parse() {
            Ok(id) if digits(s) && id > 0 => Ok(Selector::Id(id)),
            _ => Err(bad()),
        }
    }
}

/// Which layout the database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Dnf4,
    Dnf5,
}

/// Whether an item's package is on the system after the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Installed, upgraded to, downgraded to, reinstalled.
    In,
    /// Removed, or replaced by an `In` item.
    Out,
    /// Reason changes and anything newer than we know.
    Neither,
}

impl Direction {
    fn of(schema: Schema, action: i64) -> Self {
        match (schema, action) {
            (Schema::Dnf4, 1 | 2 | 4 | 6 | 9) | (Schema::Dnf5, 1..=4) => Direction::In,
            (Schema::Dnf4, 3 | 5 | 7 | 8 | 10) | (Schema::Dnf5, 5 | 6) => Direction::Out,
            _ => Direction::Neither,
        }
    }
}

/// One rpm in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub epoch: i64,
    pub version: String,
    pub release: String,
    pub arch: String,
    pub direction: Direction,
}

/// One dnf transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub id: i64,
    /// Unix time.
    pub begin: i64,
    /// dnf4's `cmdline`, dnf5's `description`.
    pub command: Option<String>,
    pub items: Vec<Item>,
}

/// Opens `path` read-only; waits a little if dnf holds a write lock.
pub fn open(path: &std::path::Path, shown: &str) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).with_context(|| format!("failed to open {shown}"))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Tells dnf5's layout from dnf4's by their tables.
pub fn schema(conn: &Connection, shown: &str) -> Result<Schema> {
    let has = |t: &str| -> Result<bool> {
        let q = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1";
        Ok(conn.query_row(q, [t], |_| Ok(())).optional()?.is_some())
    };
    let read = || -> Result<Schema> {
        if !(has("trans")? && has("trans_item")? && has("rpm")?) {
            bail!("not a dnf history database (no trans, trans_item and rpm tables)");
        }
        Ok(if has("pkg_name")? { Schema::Dnf5 } else { Schema::Dnf4 })
    };
    read().with_context(|| format!("failed to read {shown}"))
}

/// The start of the newest transaction, to choose between two databases.
pub(crate) fn newest_begin(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn.query_row("SELECT max(dt_begin) FROM trans", [], |r| r.get(0))?)
}

/// Reads the selected transaction and its rpm items. An item row that
/// does not decode is reported in `warnings` and skipped.
pub fn load(
    conn: &Connection,
    schema: Schema,
    sel: Selector,
    shown: &str,
    warnings: &mut Vec<String>,
) -> Result<Transaction> {
    let id = resolve(conn, sel).with_context(|| format!("failed to read {shown}"))?;
    let Some(id) = id else {
        match sel {
            Selector::Id(id) => bail!("{shown} has no transaction {id}"),
            Selector::Last(0) => bail!("{shown} holds no transaction"),
            Selector::Last(n) => bail!("{shown} has no transaction last-{n}"),
        }
    };
    let command_column = match schema {
        Schema::Dnf4 => "cmdline",
        Schema::Dnf5 => "description",
    };
    let q = format!("SELECT dt_begin, {command_column} FROM trans WHERE id = ?1");
    let (begin, command) = conn
        .query_row(&q, [id], |r| Ok((r.get(0)?, r.get(1)?)))
        .with_context(|| format!("failed to read transaction {id} from {shown}"))?;
    let items = items(conn, schema, id, &format!("{shown}: transaction {id}"), warnings)
        .with_context(|| format!("failed to read the items of transaction {id} from {shown}"))?;
    Ok(Transaction {
        id,
        begin,
        command,
        items,
    })
}

fn resolve(conn: &Connection, sel: Selector) -> Result<Option<i64>> {
    Ok(match sel {
        Selector::Id(id) => conn
            .query_row("SELECT id FROM trans WHERE id = ?1", [id], |r| r.get(0))
            .optional()?,
        Selector::Last(back) => conn
            .query_row("SELECT id FROM trans ORDER BY id DESC LIMIT 1 OFFSET ?1", [back], |r| {
                r.get(0)
            })
            .optional()?,
    })
}

const DNF4_ITEMS: &str = "SELECT r.name, r.epoch, r.version, r.release, r.arch, ti.action
    FROM trans_item ti JOIN rpm r ON r.item_id = ti.item_id
    WHERE ti.trans_id = ?1 ORDER BY ti.id";

const DNF5_ITEMS: &str = "SELECT n.name, r.epoch, r.version, r.release, a.name, ti.action_id
    FROM trans_item ti JOIN rpm r ON r.item_id = ti.item_id
    JOIN pkg_name n ON n.id = r.name_id JOIN arch a ON a.id = r.arch_id
    WHERE ti.trans_id = ?1 ORDER BY ti.id";

fn items(conn: &Connection, schema: Schema, id: i64, at: &str, warnings: &mut Vec<String>) -> Result<Vec<Item>> {
    let sql = match schema {
        Schema::Dnf4 => DNF4_ITEMS,
        Schema::Dnf5 => DNF5_ITEMS,
    };
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([id], |r| {
        Ok(Item {
            name: r.get(0)?,
            epoch: r.get(1)?,
            version: r.get(2)?,
            release: r.get(3)?,
            arch: r.get(4)?,
            direction: Direction::of(schema, r.get(5)?),
        })
    })?;
    let mut out = Vec::new();
    for (n, row) in rows.enumerate() {
        match row {
            Ok(item) => out.push(item),
            Err(e) => warnings.push(format!("{at}: item {}: {e}; skipped", n + 1)),
        }
    }
    Ok(out)
}

/// The history database in use: dnf5's or dnf4's, whichever exists; if
/// both do (a system moved from dnf4 to dnf5), the one written last.
/// Returns its path inside the root, the connection and its layout.
pub fn pick(root: &SysRoot) -> Result<(&'static str, Connection, Schema)> {
    let mut found = Vec::new();
    for shown in [DNF5_DB, DNF4_DB] {
        let path = root.path(shown);
        if path.exists() {
            let conn = open(&path, shown)?;
            let schema = schema(&conn, shown)?;
            let newest = newest_begin(&conn).with_context(|| format!("failed to read {shown}"))?;
            found.push((newest, shown, conn, schema));
        }
    }
    // Stable max: on a tie the first (dnf5) wins.
    let best = (0..found.len()).rev().max_by_key(|&i| found[i].0);
    match best {
        Some(i) => {
            let (_, shown, conn, schema) = found.swap_remove(i);
            Ok((shown, conn, schema))
        }
        None => bail!("no dnf history database: neither {DNF5_DB} nor {DNF4_DB} exists"),
    }
}

/// `replay --dnf-transaction`: the packages a transaction of dnf's
/// history brought in, listed by `lister` from the rpmdb (soname stems as
/// for apt, since the rpmdb knows today's names only).
pub fn replay(root: &SysRoot, sel: Selector, lister: &dyn FileLister) -> Result<Replay> {
    let mut r = Replay::default();
    let (db, conn, schema) = pick(root)?;
    let t = load(&conn, schema, sel, db, &mut r.warnings)?;
    let when = Stamp::from_unix(t.begin).map_or_else(|| t.begin.to_string(), |s| s.to_string());
    let cmd = t.command.as_deref().unwrap_or("no command line");
    r.described.push(format!(
        "replaying dnf transaction {} of {when} ({cmd}) from {db}: {} package(s)",
        t.id,
        t.items.len()
    ));
    let inbound: Vec<&Item> = t.items.iter().filter(|i| i.direction == Direction::In).collect();
    // Packages that left and did not come back in another version.
    for out in t.items.iter().filter(|i| i.direction == Direction::Out) {
        if !inbound.iter().any(|i| i.name == out.name && i.arch == out.arch) {
            r.unknown.push(crate::managers::rpm::nevra(
                &out.name,
                &out.version,
                &out.release,
                &out.arch,
            ));
        }
    }
    let nevras: Vec<String> = inbound
        .iter()
        .map(|i| crate::managers::rpm::nevra(&i.name, &i.version, &i.release, &i.arch))
        .collect();
    if nevras.is_empty() {
        return Ok(r);
    }
    let listing = lister.list(root, &nevras)?;
    listing
        .files
        .iter()
        .filter(|f| !root.is_dir(f))
        .for_each(|f| r.set.insert(f));
    r.unknown.extend(listing.not_installed);
    r.warnings
        .extend(listing.unexpected.iter().map(|l| format!("rpm -ql: {l}")));
    Ok(r.with_soname_stems())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_follow_dnf_history() {
        assert_eq!("last".parse(), Ok(Selector::Last(0)));
        assert_eq!("last-2".parse(), Ok(Selector::Last(2)));
        assert_eq!("42".parse(), Ok(Selector::Id(42)));
        for bad in [
            "",
            "0",
            "-1",
            "+3",
            "last-",
            "last-x",
            "first",
            "4 2",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<Selector>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn directions_per_schema() {
        use Direction::*;
        let d4: Vec<_> = (1..=11).map(|a| Direction::of(Schema::Dnf4, a)).collect();
        assert_eq!(d4, [In, In, Out, In, Out, In, Out, Out, In, Out, Neither]);
        let d5: Vec<_> = (1..=8).map(|a| Direction::of(Schema::Dnf5, a)).collect();
        assert_eq!(d5, [In, In, In, In, Out, Out, Neither, Neither]);
    }
}
