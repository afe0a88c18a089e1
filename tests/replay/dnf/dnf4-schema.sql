-- dnf4's history database, as libdnf creates it
-- (libdnf/transaction/sql/create_tables.sql, schema 1.1) and migrates it
-- (migrate_tables_1_2.sql: trans.comment; migrate_tables_1_3.sql:
-- trans.persistence). Only the tables and columns, for test fixtures.
CREATE TABLE trans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dt_begin INTEGER NOT NULL,
    dt_end INTEGER,
    rpmdb_version_begin TEXT,
    rpmdb_version_end TEXT,
    releasever TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    cmdline TEXT,
    state INTEGER NOT NULL,
    comment TEXT DEFAULT "",
    persistence INTEGER DEFAULT 0
);
CREATE TABLE repo (
    id INTEGER PRIMARY KEY,
    repoid TEXT NOT NULL
);
CREATE TABLE console_output (
    id INTEGER PRIMARY KEY,
    trans_id INTEGER REFERENCES trans(id),
    file_descriptor INTEGER NOT NULL,
    line TEXT NOT NULL
);
CREATE TABLE item (
    id INTEGER PRIMARY KEY,
    item_type INTEGER NOT NULL
);
CREATE TABLE trans_item (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trans_id INTEGER REFERENCES trans(id),
    item_id INTEGER REFERENCES item(id),
    repo_id INTEGER REFERENCES repo(id),
    action INTEGER NOT NULL,
    reason INTEGER NOT NULL,
    state INTEGER NOT NULL
);
CREATE TABLE item_replaced_by (
    trans_item_id INTEGER REFERENCES trans_item(id),
    by_trans_item_id INTEGER REFERENCES trans_item(id),
    PRIMARY KEY (trans_item_id, by_trans_item_id)
);
CREATE TABLE trans_with (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trans_id INTEGER REFERENCES trans(id),
    item_id INTEGER REFERENCES item(id),
    CONSTRAINT trans_with_unique_trans_item UNIQUE (trans_id, item_id)
);
CREATE TABLE rpm (
    item_id INTEGER UNIQUE NOT NULL,
    name TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    version TEXT NOT NULL,
    release TEXT NOT NULL,
    arch TEXT NOT NULL,
    FOREIGN KEY(item_id) REFERENCES item(id),
    CONSTRAINT rpm_unique_nevra UNIQUE (name, epoch, version, release, arch)
);
CREATE TABLE comps_group (
    item_id INTEGER UNIQUE NOT NULL,
    groupid TEXT NOT NULL,
    name TEXT NOT NULL,
    translated_name TEXT NOT NULL,
    pkg_types INTEGER NOT NULL,
    FOREIGN KEY(item_id) REFERENCES item(id)
);
CREATE TABLE comps_group_package (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    installed INTEGER NOT NULL,
    pkg_type INTEGER NOT NULL,
    FOREIGN KEY(group_id) REFERENCES comps_group(item_id),
    CONSTRAINT comps_group_package_unique_name UNIQUE (group_id, name)
);
CREATE TABLE comps_environment (
    item_id INTEGER UNIQUE NOT NULL,
    environmentid TEXT NOT NULL,
    name TEXT NOT NULL,
    translated_name TEXT NOT NULL,
    pkg_types INTEGER NOT NULL,
    FOREIGN KEY(item_id) REFERENCES item(id)
);
CREATE TABLE comps_environment_group (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    environment_id INTEGER NOT NULL,
    groupid TEXT NOT NULL,
    installed INTEGER NOT NULL,
    group_type INTEGER NOT NULL,
    FOREIGN KEY(environment_id) REFERENCES comps_environment(item_id),
    CONSTRAINT comps_environment_group_unique_groupid UNIQUE (environment_id, groupid)
);
CREATE INDEX rpm_name ON rpm(name);
CREATE INDEX trans_item_item_id ON trans_item(item_id);
CREATE TABLE config (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO config VALUES ('version', '1.3');
