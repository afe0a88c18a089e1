//! Plain data and pure logic: what a scan found, the changed-file set,
//! unit names, the tiers, the plan and its report. Nothing here reads the
//! system.

pub mod batch;
pub mod changed;
pub mod changelog;
pub mod fixes;
pub mod kernel;
pub mod model;
pub mod places;
pub mod plan;
pub mod policy;
pub mod prom;
pub mod reboot;
pub mod report;
pub mod sessions;
pub mod steps;
pub mod tiers;
pub mod unit_name;
pub mod version;
pub mod waves;
