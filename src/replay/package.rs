//! What a transaction did to one package, as the history sources record
//! it, and the syntax checks they share.

use std::fmt;

/// The kind of change; the names are apt's history.log field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Install,
    Reinstall,
    Upgrade,
    Downgrade,
    Remove,
    Purge,
}

impl Change {
    /// True when the package is still installed afterwards, so its file
    /// list names what the transaction wrote.
    pub(crate) fn leaves_files(self) -> bool {
        !matches!(self, Change::Remove | Change::Purge)
    }
}

/// One package in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageChange {
    pub name: String,
    /// `None` where the source does not say (pre-multiarch dpkg logs).
    pub arch: Option<String>,
    pub change: Change,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl PackageChange {
    /// `name:arch`, or `name` without an arch.
    pub fn qualified(&self) -> String {
        match &self.arch {
            Some(a) => format!("{}:{a}", self.name),
            None => self.name.clone(),
        }
    }
}

impl fmt::Display for PackageChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        write!(
            f,
            "{:?} {} {} {}",
            self.change,
            self.qualified(),
            v(&self.old),
            v(&self.new)
        )
    }
}

/// A Debian package name (deb-control(5): lower case letters, digits,
/// `+ - .`, at least two characters, starting alphanumeric).
pub fn valid_deb_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(c))
}

/// A Debian architecture name (`amd64`, `i386`, `all`, `kfreebsd-amd64`).
pub fn valid_deb_arch(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// `name` or `name:arch`, both checked.
pub(crate) fn split_deb_package(s: &str) -> Result<(String, Option<String>), String> {
    let (name, arch) = match s.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (s, None),
    };
    if !valid_deb_name(name) {
        return Err(format!("{name:?} is not a package name"));
    }
    if let Some(a) = arch.filter(|a| !valid_deb_arch(a)) {
        return Err(format!("{a:?} is not an architecture"));
    }
    Ok((name.to_string(), arch.map(str::to_string)))
}

/// A Debian version (deb-version(7)): `[epoch:]upstream[-revision]`,
/// the epoch a number, the rest alphanumerics and `. + ~ - :`.
pub fn valid_deb_version(s: &str) -> bool {
    let rest = match s.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() || !epoch.bytes().all(|c| c.is_ascii_digit()) {
                return false;
            }
            rest
        }
        None => s,
    };
    !rest.is_empty()
        && rest.as_bytes()[0].is_ascii_digit()
        && rest.bytes().all(|c| c.is_ascii_alphanumeric() || b".+~-:".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_names_versions_and_arches() {
        assert!(valid_deb_name("libc6") && valid_deb_name("g++") && valid_deb_name("libstdc++6"));
        assert!(!valid_deb_name("a") && !valid_deb_name("Foo") && !valid_deb_name("-x") && !valid_deb_name("a b"));
        for v in [
            "1:2.3-4",
            "2.36-9+deb12u14",
            "1.0~rc1",
            "0.0~git20230123.b2528b0-1",
            "1:9.2p1-2+deb12u6",
        ] {
            assert!(valid_deb_version(v), "{v}");
        }
        for v in ["", ":1", "x:1.0", "1:", "1.0 2", "abc", "1.0,", "1.0)"] {
            assert!(!valid_deb_version(v), "{v}");
        }
        assert_eq!(
            split_deb_package("libfoo:i386").unwrap(),
            ("libfoo".to_string(), Some("i386".to_string()))
        );
        assert_eq!(split_deb_package("libfoo").unwrap(), ("libfoo".to_string(), None));
        assert!(split_deb_package("libfoo:I386").is_err());
        assert!(split_deb_package("libfoo:").is_err());
    }
}
