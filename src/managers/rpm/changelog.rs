//! The fixes of an rpm transaction's stale units, from the rpmdb's
//! changelogs (docs/cves.md): one fixed `rpm -q --qf` query gives each
//! upgraded package's files and changelog, versions compared in rpm's
//! order.

use super::FileLister;
use crate::core::changed::normalize;
use crate::core::changelog::{self, evr_cmp};
use crate::core::fixes::{self, ByUnit, Fix, Upgrade, Upgrades};
use crate::core::plan::Plan;
use crate::system::sysroot::SysRoot;
use std::collections::HashMap;

/// The fixes of each stale unit: one changelog query (`rpm -q --qf`) gives each
/// upgraded package's files and changelog; a failed query leaves every
/// stale unit's fixes unknown, with the error.
pub(crate) fn annotate(plan: &Plan, ups: &Upgrades, lister: &dyn FileLister, root: &SysRoot) -> ByUnit {
    let installed: Vec<&Upgrade> = ups.packages.iter().filter(|u| u.to.is_some()).collect();
    if fixes::stale_units(plan).next().is_none() || installed.is_empty() {
        return ByUnit::new();
    }
    let queries: Vec<String> = installed.iter().filter_map(|u| qualified(u)).collect();
    let listing = match lister.changelogs(root, &queries) {
        Ok(l) => l,
        Err(e) => return fixes::unknown_for(plan, &ups.packages, &format!("{e:#}")),
    };
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut found: Vec<Fix> = Vec::new();
    for c in &listing.changelogs {
        let Some(up) = installed
            .iter()
            .find(|u| Some(c.package.as_str()) == qualified(u).as_deref())
        else {
            continue;
        };
        for f in &c.files {
            owner.entry(normalize(f)).or_insert(found.len());
        }
        found.push(if c.text.is_empty() {
            Fix::unknown(up, "no changelog in the rpmdb")
        } else {
            fixes::summarize(up, &changelog::parse_rpm(&c.text), evr_cmp)
        });
    }
    fixes::by_unit(plan, &owner, |i| found[i].clone())
}

fn qualified(u: &Upgrade) -> Option<String> {
    Some(format!("{}.{}", u.name, u.arch.as_ref()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixes::Family;
    use anyhow::{bail, Result};

    /// Answers the changelog query with Fedora's openssl-libs
    /// (tests/changelogs/fedora-openssl.txt), or fails.
    struct Fedora(bool);

    impl FileLister for Fedora {
        fn list(&self, _: &SysRoot, _: &[String]) -> Result<super::super::Listing> {
            unreachable!("the annotation runs the changelog query only")
        }
        fn installed(&self, _: &SysRoot, _: &[String]) -> Result<super::super::Listing> {
            unreachable!("the annotation runs the changelog query only")
        }
        fn changelogs(&self, _: &SysRoot, queries: &[String]) -> Result<super::super::Listing> {
            if !self.0 {
                bail!("rpm: no rpmdb");
            }
            assert_eq!(queries, ["openssl-libs.x86_64"]);
            let text = include_str!("../../../tests/changelogs/fedora-openssl.txt");
            Ok(super::super::parse_changelogs(&format!(
                "@@restart-stale openssl-libs.x86_64\nF /usr/lib64/libssl.so.3.2.4\n{text}"
            )))
        }
    }

    #[test]
    fn an_rpm_upgrade_is_annotated_from_its_changelog_with_dist_tags() {
        use crate::core::model::{StaleFile, StaleProcess, Staleness, Via};
        use crate::core::plan::{Action, Reason, UnitPlan};
        let (_t, root) = SysRoot::scratch();
        let unit = UnitPlan {
            unit: "sshd.service".into(),
            action: Action::Restart,
            reason: Reason::NotAllowed,
            processes: vec![StaleProcess {
                pid: 9,
                comm: "sshd".into(),
                owner: crate::core::unit_name::Owner::Unit("sshd.service".into()),
                files: vec![StaleFile::new(
                    std::sync::Arc::from("/usr/lib64/libssl.so.3.2.4"),
                    Staleness::Replaced,
                    Via::Map,
                )],
            }],
        };
        let plan = Plan {
            units: vec![unit],
            ..Plan::default()
        };
        let ups = Upgrades {
            family: Family::Rpm,
            packages: vec![Upgrade {
                name: "openssl-libs".into(),
                arch: Some("x86_64".into()),
                from: Some("1:3.2.4-1.fc41".into()),
                to: Some("1:3.2.4-3.fc41".into()),
            }],
        };
        let f = &annotate(&plan, &ups, &Fedora(true), &root)["sshd.service"];
        assert_eq!(f[0].cves, ["CVE-2026-41210", "CVE-2026-41211", "CVE-2026-41212"]);
        let f = &annotate(&plan, &ups, &Fedora(false), &root)["sshd.service"];
        assert!(f[0].unknown.as_deref().unwrap().contains("no rpmdb"), "{f:?}");
    }
}
