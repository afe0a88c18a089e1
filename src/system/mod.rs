//! Readers of the running system, each on an injectable root
//! ([`sysroot::SysRoot`]): /proc (maps, PROCMAP_QUERY, fds), the cgroup
//! tree, the staleness rule's lookups, the process scan (split across
//! threads by [`workers`]), and the policy
//! links (read and written), who runs the processes outside them, the
//! one way to read a path a process or user chose ([`safe_open`]), and
//! the one way root writes files ([`safe_write`]).

pub mod cgroup;
pub mod dedup;
pub mod interp;
pub mod kernel;
pub mod maps;
pub mod ownership;
pub mod pidfd;
pub mod policy;
pub mod procfs;
pub mod procmap;
pub mod safe_open;
pub mod safe_write;
pub mod scan;
pub mod staleness;
pub mod sysroot;
pub mod textfile;
pub mod users;
pub mod workers;
