//! Built-in safety tiers: units never restarted automatically, and units
//! restarted only on an explicit admin `allow`.

/// Why a unit is in a tier, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Restarting breaks the machine or kills sessions. Nothing overrides it.
    Never(&'static str),
    /// Risky: skipped by `-a`, restarted only with an `/etc` allow link.
    Cautious(&'static str),
}

// Patterns: `name` matches `name.service`; `name@` matches any instance or
// the template `name@.service`; a trailing `*` is a prefix match on the
// whole unit name.
const NEVER: &[(&str, &str)] = &[
    ("dbus", "the system bus"),
    ("dbus-broker", "the system bus"),
    ("systemd-logind", "the login manager"),
    ("elogind", "the login manager"),
    ("getty@", "a login console"),
    ("serial-getty@", "a login console"),
    ("console-getty", "a login console"),
    ("container-getty@", "a login console"),
    ("user@", "a user's session manager"),
    ("user-runtime-dir@", "a user's runtime directory"),
    ("display-manager", "a display manager"),
    ("gdm", "a display manager"),
    ("gdm3", "a display manager"),
    ("sddm", "a display manager"),
    ("lightdm", "a display manager"),
    ("lxdm", "a display manager"),
    ("xdm", "a display manager"),
    ("kdm", "a display manager"),
    ("nodm", "a display manager"),
    ("slim", "a display manager"),
    ("greetd", "a display manager"),
    ("wdm", "a display manager"),
    ("xrdp", "a display manager"),
    ("emergency", "the emergency shell"),
    ("rescue", "the rescue shell"),
];

const CAUTIOUS: &[(&str, &str)] = &[
    ("NetworkManager", "networking"),
    ("systemd-networkd", "networking"),
    ("networking", "networking"),
    ("ifup@", "networking"),
    ("wpa_supplicant", "networking"),
    ("ModemManager", "networking"),
    ("openvpn*", "networking"),
    ("strongswan*", "networking"),
    ("bluetooth", "networking"),
    ("libvirtd", "virtualisation"),
    ("virtlogd", "virtualisation"),
    ("virtlockd", "virtualisation"),
    ("docker", "containers"),
    ("containerd", "containers"),
    ("lxc*", "containers"),
    ("lxcfs", "containers"),
    ("systemd-nspawn@", "containers"),
    ("systemd-machined", "containers"),
    ("apt-daily*", "housekeeping"),
    ("unattended-upgrades", "housekeeping"),
    ("dnf-automatic*", "housekeeping"),
    ("packagekit", "housekeeping"),
    ("rc-local", "housekeeping"),
    ("cron-*", "housekeeping"),
    ("auditd", "auditing"),
];

fn matches(pattern: &str, unit: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix('*') {
        return unit.starts_with(prefix);
    }
    let Some(stem) = unit.strip_suffix(".service") else {
        return false;
    };
    if pattern.ends_with('@') {
        return stem.starts_with(pattern);
    }
    stem == pattern
}

fn find(list: &'static [(&'static str, &'static str)], unit: &str) -> Option<&'static str> {
    list.iter().find(|(p, _)| matches(p, unit)).map(|(_, why)| *why)
}

/// The built-in tier of `unit`, if any.
pub(crate) fn tier_of(unit: &str) -> Option<Tier> {
    find(NEVER, unit)
        .map(Tier::Never)
        .or_else(|| find(CAUTIOUS, unit).map(Tier::Cautious))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_units() {
        assert_eq!(tier_of("dbus.service"), Some(Tier::Never("the system bus")));
        assert!(matches!(tier_of("getty@tty1.service"), Some(Tier::Never(_))));
        assert!(matches!(tier_of("serial-getty@ttyS0.service"), Some(Tier::Never(_))));
        assert!(matches!(tier_of("user@1000.service"), Some(Tier::Never(_))));
        assert!(matches!(tier_of("openvpn-client@x.service"), Some(Tier::Cautious(_))));
        assert!(matches!(tier_of("apt-daily-upgrade.service"), Some(Tier::Cautious(_))));
        assert!(matches!(tier_of("docker.service"), Some(Tier::Cautious(_))));
        assert_eq!(tier_of("dbusx.service"), None);
        assert_eq!(tier_of("sshd.service"), None);
        assert_eq!(tier_of("gdm.socket"), None);
    }
}
