//! What the policy links say, once read ([`crate::system::policy`] reads
//! and writes them): a verdict per unit. Admin links win over distribution
//! links; a template link covers its instances unless an instance link
//! exists.

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

/// One policy link.
#[derive(Debug, Clone)]
pub struct Entry {
    pub deny: bool,
    pub link: PathBuf,
}

/// All policy links, loaded once.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub(crate) admin: HashMap<String, Entry>,
    pub(crate) dist: HashMap<String, Entry>,
    /// Invalid links, one message each, naming the link.
    pub warnings: Vec<String>,
}

impl Policy {
    fn lookup<'a>(map: &'a HashMap<String, Entry>, unit: &str) -> Option<&'a Entry> {
        map.get(unit).or_else(|| map.get(&unit_name::template_of(unit)?))
    }

    /// The verdict for `unit`; a link naming the template (`foo@.service`)
    /// covers its instances unless an instance link exists.
    pub fn verdict(&self, unit: &str) -> Verdict {
        if let Some(e) = Self::lookup(&self.admin, unit) {
            return if e.deny {
                Verdict::DeniedByAdmin(e.link.clone())
            } else {
                Verdict::AllowedByAdmin(e.link.clone())
            };
        }
        match Self::lookup(&self.dist, unit) {
            Some(e) => Verdict::AllowedByDistribution(e.link.clone()),
            None => Verdict::Unset,
        }
    }
}
