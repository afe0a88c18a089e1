//! What the policy links say, once read ([`crate::system::policy`] reads
//! and writes them): a verdict per unit.
//!
//! The directories are searched in a fixed order and the first one with a
//! link for the unit decides; within one directory an instance link
//! (`foo@bar.service`) wins over the template link (`foo@.service`). The
//! order ([`crate::system::policy::Policy::load`]) puts restart-stale's own
//! admin links first, so that a deny there, even on a template, is never
//! undone by a clr-service-restart link.

use crate::core::unit_name;
use std::collections::HashMap;
use std::path::PathBuf;

/// What policy says about one unit, with the link that said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    AllowedByAdmin(PathBuf),
    AllowedByDistribution(PathBuf),
    DeniedByAdmin(PathBuf),
    Unset,
}

impl Verdict {
    /// `allowed by admin: LINK`, as the plan's reasons say it;
    /// `not allowed: no policy link` when unset.
    pub(crate) fn describe(&self) -> String {
        match self {
            Verdict::AllowedByAdmin(l) => format!("allowed by admin: {}", l.display()),
            Verdict::AllowedByDistribution(l) => format!("allowed by distribution: {}", l.display()),
            Verdict::DeniedByAdmin(l) => format!("denied by admin: {}", l.display()),
            Verdict::Unset => "not allowed: no policy link".to_string(),
        }
    }
}

/// One policy link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub deny: bool,
    pub link: PathBuf,
}

/// The links of one policy directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Level {
    /// An admin directory (`/etc/...`): its links may deny.
    pub admin: bool,
    pub entries: HashMap<String, Entry>,
}

/// All policy links, loaded once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The directories, the one that decides first.
    pub(crate) levels: Vec<Level>,
    /// Invalid or untrusted links and directories, one message each,
    /// naming the path.
    pub warnings: Vec<String>,
}

impl Level {
    fn lookup(&self, unit: &str) -> Option<&Entry> {
        self.entries
            .get(unit)
            .or_else(|| self.entries.get(&unit_name::template_of(unit)?))
    }
}

impl Policy {
    /// The verdict for `unit`: the first directory with a link for it
    /// decides; a link naming the template (`foo@.service`) covers its
    /// instances unless the same directory has an instance link.
    pub(crate) fn verdict(&self, unit: &str) -> Verdict {
        for level in &self.levels {
            if let Some(e) = level.lookup(unit) {
                return match (level.admin, e.deny) {
                    (_, true) => Verdict::DeniedByAdmin(e.link.clone()),
                    (true, false) => Verdict::AllowedByAdmin(e.link.clone()),
                    (false, false) => Verdict::AllowedByDistribution(e.link.clone()),
                };
            }
        }
        Verdict::Unset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(admin: bool, links: &[(&str, bool)]) -> Level {
        let entries = links
            .iter()
            .map(|&(u, deny)| {
                let link = PathBuf::from(format!("/{}/{u}", if admin { "etc" } else { "usr" }));
                (u.to_string(), Entry { deny, link })
            })
            .collect();
        Level { admin, entries }
    }

    #[test]
    fn the_first_directory_with_a_link_decides() {
        let p = Policy {
            levels: vec![
                level(true, &[("foo@.service", true), ("a.service", false)]),
                level(true, &[("foo@bar.service", false), ("b@.service", true)]),
                level(false, &[("b@x.service", false), ("c.service", false)]),
            ],
            warnings: vec![],
        };
        // A deny on the template beats an instance link further down.
        assert!(matches!(p.verdict("foo@bar.service"), Verdict::DeniedByAdmin(_)));
        assert!(matches!(p.verdict("b@x.service"), Verdict::DeniedByAdmin(_)));
        assert!(matches!(p.verdict("a.service"), Verdict::AllowedByAdmin(_)));
        assert!(matches!(p.verdict("c.service"), Verdict::AllowedByDistribution(_)));
        assert_eq!(p.verdict("d.service"), Verdict::Unset);
        assert_eq!(
            p.verdict("c.service").describe(),
            "allowed by distribution: /usr/c.service"
        );
    }
}
