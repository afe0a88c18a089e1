//! apt's `DPkg::Pre-Install-Pkgs` protocol, version 3: a pure parser.
//!
//! apt writes `VERSION 3`, then its whole configuration as `Key=Value`
//! lines (both %-encoded by apt's `QuoteString`; list items as
//! `Key::=value`), a blank line, then one line per dpkg action:
//! `pkg curver curarch curMA op newver newarch newMA action`
//! (apt-pkg/deb/dpkgpm.cc, `pkgDPkgPM::SendPkgsInfo`).
//!
//! The parser is strict but never gives up on the whole input: each bad
//! line becomes a [`LineError`] naming the input and line number, and
//! every good line is kept.

use std::fmt;

/// One installed or wanted version: `ver arch multi-arch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgVersion {
    pub version: String,
    pub arch: String,
    pub multi_arch: String,
}

/// How the new version compares to the current one (apt prints `<` when
/// there is no current version and `>` when there is no new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`: current is older than new.
    Upgrade,
    /// `=`: same version (reinstall).
    Same,
    /// `>`: current is newer than new, or the package goes away.
    Downgrade,
}

/// What dpkg is asked to do with the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Unpack this .deb file.
    Unpack(String),
    /// `**CONFIGURE**`
    Configure,
    /// `**REMOVE**` (remove or purge).
    Remove,
    /// `**ERROR**`: apt had no file for an install.
    Error,
}

/// One action line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub package: String,
    pub current: Option<PkgVersion>,
    pub op: Op,
    pub new: Option<PkgVersion>,
    pub step: Step,
}

impl fmt::Display for Action {
    /// The protocol-3 line this action was parsed from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let triple = |v: &Option<PkgVersion>| match v {
            Some(v) => format!("{} {} {}", v.version, v.arch, v.multi_arch),
            None => "- - none".to_string(),
        };
        let op = match self.op {
            Op::Upgrade => "<",
            Op::Same => "=",
            Op::Downgrade => ">",
        };
        let step = match &self.step {
            Step::Unpack(path) => path.as_str(),
            Step::Configure => "**CONFIGURE**",
            Step::Remove => "**REMOVE**",
            Step::Error => "**ERROR**",
        };
        let (cur, new) = (triple(&self.current), triple(&self.new));
        write!(f, "{} {cur} {op} {new} {step}", self.package)
    }
}

impl Action {
    /// The architectures the package is known under, current first.
    pub(crate) fn archs(&self) -> Vec<&str> {
        let mut archs: Vec<&str> = Vec::new();
        for v in [&self.current, &self.new].into_iter().flatten() {
            if !archs.contains(&v.arch.as_str()) {
                archs.push(&v.arch);
            }
        }
        archs
    }
}

/// A line that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub source: String,
    pub line: usize,
    pub message: String,
    pub text: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: {:?}", self.source, self.line, self.message, self.text)
    }
}

/// Everything apt sent, good and bad.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookInput {
    /// Decoded `(key, value)` pairs in apt's order; list items keep their
    /// trailing `::`.
    pub config: Vec<(String, String)>,
    pub actions: Vec<Action>,
    pub errors: Vec<LineError>,
}

impl HookInput {
    /// The last value of `key`, compared case-insensitively as apt does.
    pub fn config_value(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole protocol-3 stream. `source` names the input in errors
/// (`stdin`).
pub fn parse(data: &[u8], source: &str) -> HookInput {
    let mut input = HookInput::default();
    // A final newline ends the last line; it is not an empty line of its own.
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    let mut lines = data.split(|&b| b == b'\n').enumerate().map(|(i, l)| (i + 1, l));
    let err = |line, message: &str, text: &[u8]| LineError {
        source: source.to_string(),
        line,
        message: message.to_string(),
        text: String::from_utf8_lossy(text).into_owned(),
    };
    match lines.next() {
        Some((_, b"VERSION 3")) => {}
        Some((n, l)) => {
            let msg = "expected \"VERSION 3\"; is DPkg::Tools::Options::<command>::Version \"3\" set for this hook?";
            input.errors.push(err(n, msg, l));
            return input;
        }
        None => unreachable!("split yields at least one item"),
    }
    let mut closed = false;
    let mut last = 1;
    for (n, raw) in lines.by_ref() {
        last = n;
        if raw.is_empty() {
            closed = true;
            break;
        }
        match parse_config_line(raw) {
            Ok(kv) => input.config.push(kv),
            Err(m) => input.errors.push(err(n, &m, raw)),
        }
    }
    if !closed {
        let msg = "input ended before the blank line that closes the configuration";
        input.errors.push(err(last, msg, b""));
        return input;
    }
    for (n, raw) in lines {
        if raw.is_empty() {
            continue; // the final newline, or stray blank lines
        }
        let parsed = std::str::from_utf8(raw)
            .map_err(|_| "not valid UTF-8".to_string())
            .and_then(parse_action);
        match parsed {
            Ok(a) => input.actions.push(a),
            Err(m) => input.errors.push(err(n, &m, raw)),
        }
    }
    input
}

fn parse_config_line(raw: &[u8]) -> Result<(String, String), String> {
    let eq = raw
        .iter()
        .position(|&b| b == b'=')
        .ok_or("configuration line without '='")?;
    let key = percent_decode(&raw[..eq]).map_err(|e| format!("key: {e}"))?;
    let value = percent_decode(&raw[eq + 1..]).map_err(|e| format!("value: {e}"))?;
    if key.is_empty() {
        return Err("configuration line with an empty key".into());
    }
    Ok((key, value))
}

/// Undoes apt's `QuoteString`: `%` followed by two hex digits is a byte.
/// Bytes that are not UTF-8 after decoding are replaced (apt's
/// configuration may hold anything; we only read a few known keys).
pub(crate) fn percent_decode(raw: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'%' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let hex = raw.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        let byte = hex
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("bad %-escape at byte {}", i + 1))?;
        out.push(byte);
        i += 3;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Parses one action line.
pub fn parse_action(line: &str) -> Result<Action, String> {
    let mut fields = line.splitn(9, ' ');
    let mut next = |what: &str| fields.next().ok_or_else(|| format!("missing field {what}"));
    let package = next("package")?.to_string();
    let cur = [next("curver")?, next("curarch")?, next("curMA")?];
    let op = next("op")?;
    let new = [next("newver")?, next("newarch")?, next("newMA")?];
    let step = next("action")?;
    validate_package(&package)?;
    let op = match op {
        "<" => Op::Upgrade,
        "=" => Op::Same,
        ">" => Op::Downgrade,
        other => return Err(format!("operator {other:?} is not <, = or >")),
    };
    let current = version_triple(cur, "current")?;
    let new = version_triple(new, "new")?;
    let step = parse_step(step)?;
    check_consistent(&current, &new, &step)?;
    Ok(Action {
        package,
        current,
        op,
        new,
        step,
    })
}

fn parse_step(s: &str) -> Result<Step, String> {
    Ok(match s {
        "**CONFIGURE**" => Step::Configure,
        "**REMOVE**" => Step::Remove,
        "**ERROR**" => Step::Error,
        path if path.starts_with('/') => Step::Unpack(path.to_string()),
        other => {
            return Err(format!(
                "action {other:?} is not a .deb path, **CONFIGURE** or **REMOVE**"
            ))
        }
    })
}

fn check_consistent(current: &Option<PkgVersion>, new: &Option<PkgVersion>, step: &Step) -> Result<(), String> {
    match step {
        Step::Remove if current.is_none() => Err("**REMOVE** of a package with no current version".into()),
        Step::Unpack(_) | Step::Configure if new.is_none() => Err("install or configure without a new version".into()),
        _ if current.is_none() && new.is_none() => Err("neither a current nor a new version".into()),
        _ => Ok(()),
    }
}

/// `- - none` is a missing version; anything else must be three fields.
fn version_triple([version, arch, ma]: [&str; 3], which: &str) -> Result<Option<PkgVersion>, String> {
    if version == "-" {
        if arch == "-" && ma == "none" {
            return Ok(None);
        }
        return Err(format!("missing {which} version must be written \"- - none\""));
    }
    let ok_version = version
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".+~:-".contains(&b));
    if !ok_version {
        return Err(format!(
            "{which} version {version:?} has characters dpkg does not allow"
        ));
    }
    validate_arch(arch).map_err(|e| format!("{which} {e}"))?;
    if ma.is_empty() || !ma.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return Err(format!("{which} multi-arch {ma:?} is not a word"));
    }
    Ok(Some(PkgVersion {
        version: version.to_string(),
        arch: arch.to_string(),
        multi_arch: ma.to_string(),
    }))
}

/// dpkg's package name rule (deb-control(5)); it also keeps names safe
/// to use in file names under /var/lib/dpkg/info.
pub(crate) fn validate_package(name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+-.".contains(&c));
    if ok {
        Ok(())
    } else {
        Err(format!("package name {name:?} is not a valid dpkg package name"))
    }
}

/// Architecture names: lowercase letters, digits and `-` (`amd64`, `all`,
/// `musl-linux-arm64`).
pub(crate) fn validate_arch(arch: &str) -> Result<(), String> {
    let ok = !arch.is_empty()
        && !arch.starts_with('-')
        && arch
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("architecture {arch:?} is not valid"))
    }
}

/// apt's boolean spellings; the record format shares them.
pub(crate) use crate::transaction::record::parse_bool;

#[cfg(test)]
mod tests {
    use super::*;

    fn v(version: &str, arch: &str, ma: &str) -> Option<PkgVersion> {
        Some(PkgVersion {
            version: version.into(),
            arch: arch.into(),
            multi_arch: ma.into(),
        })
    }

    const UPGRADE: &str = "VERSION 3\n\
APT::Architecture=amd64\n\
CommandLine::AsString=apt-get%20-y%20-q%20upgrade\n\
DPkg::Pre-Install-Pkgs::=/usr/bin/restart-stale%20apt-hook%20pre-install-pkgs%20||%20true\n\
RestartStale::Auto-Restart=false\n\
\n\
libdemo1 1.0 amd64 same < 2.0 amd64 same /srv/repo/./libdemo1_2.0_amd64.deb\n\
libdemo1 1.0 amd64 same < 2.0 amd64 same **CONFIGURE**\n";

    #[test]
    fn upgrade_with_config() {
        let input = parse(UPGRADE.as_bytes(), "stdin");
        assert_eq!(input.errors, vec![]);
        assert_eq!(
            input.config_value("commandline::asstring"),
            Some("apt-get -y -q upgrade")
        );
        assert_eq!(input.config_value("RestartStale::Auto-Restart"), Some("false"));
        assert_eq!(
            input.config_value("DPkg::Pre-Install-Pkgs::"),
            Some("/usr/bin/restart-stale apt-hook pre-install-pkgs || true")
        );
        assert_eq!(input.actions.len(), 2);
        let a = &input.actions[0];
        assert_eq!(a.package, "libdemo1");
        assert_eq!(a.current, v("1.0", "amd64", "same"));
        assert_eq!(a.new, v("2.0", "amd64", "same"));
        assert_eq!(a.op, Op::Upgrade);
        assert_eq!(a.step, Step::Unpack("/srv/repo/./libdemo1_2.0_amd64.deb".into()));
        assert_eq!(input.actions[1].step, Step::Configure);
    }

    #[test]
    fn install_remove_purge_and_reinstall() {
        let data = "VERSION 3\n\nnewpkg - - none < 1:2.3~rc1+dfsg-1 all foreign /var/cache/apt/archives/newpkg.deb\n\
demod 2.0 amd64 none > - - none **REMOVE**\n\
same 1.0 amd64 none = 1.0 amd64 none **CONFIGURE**\n";
        let input = parse(data.as_bytes(), "stdin");
        assert_eq!(input.errors, vec![]);
        let [install, remove, same] = &input.actions[..] else {
            panic!("{input:?}")
        };
        assert_eq!(install.current, None);
        assert_eq!(install.new, v("1:2.3~rc1+dfsg-1", "all", "foreign"));
        assert_eq!(remove.new, None);
        assert_eq!((remove.op, &remove.step), (Op::Downgrade, &Step::Remove));
        assert_eq!(same.op, Op::Same);
    }

    #[test]
    fn multi_arch_same_packages_keep_their_arch() {
        let data = "VERSION 3\n\nlibx 1 amd64 same < 2 amd64 same /a.deb\nlibx 1 i386 same < 2 i386 same /b.deb\n";
        let input = parse(data.as_bytes(), "stdin");
        let archs: Vec<_> = input
            .actions
            .iter()
            .map(|a| a.new.as_ref().unwrap().arch.as_str())
            .collect();
        assert_eq!(archs, ["amd64", "i386"]);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode(b"a%20b%3d%25").unwrap(), "a b=%");
        assert_eq!(percent_decode(b"%e2%82%ac").unwrap(), "€");
        assert!(percent_decode(b"50%").is_err());
        assert!(percent_decode(b"%zz").is_err());
        let input = parse(b"VERSION 3\nKey%3dwith%3dequals=v%0aw\n\n", "stdin");
        assert_eq!(input.config, vec![("Key=with=equals".into(), "v\nw".into())]);
    }

    #[test]
    fn malformed_lines_name_input_and_line_and_keep_the_rest() {
        let data = "VERSION 3\nGood=1\nno equals sign\nBad=%zz\n\n\
ok 1 amd64 none < 2 amd64 none /ok.deb\n\
short 1 amd64\n\
../etc 1 amd64 none < 2 amd64 none /x.deb\n\
pk 1 amd64 none ? 2 amd64 none /x.deb\n\
gone 1 amd64 none > - - none **CONFIGURE**\n\
odd - amd64 none < 2 amd64 none /x.deb\n\
p2 1 amd64 none < 2 amd64 none relative.deb\n\
after 1 amd64 none < 2 amd64 none **CONFIGURE**\n";
        let input = parse(data.as_bytes(), "stdin");
        assert_eq!(input.config, vec![("Good".into(), "1".into())]);
        let names: Vec<_> = input.actions.iter().map(|a| a.package.as_str()).collect();
        assert_eq!(names, ["ok", "after"]);
        let lines: Vec<_> = input.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 7, 8, 9, 10, 11, 12]);
        let shown = input.errors[2].to_string();
        assert!(shown.starts_with("stdin:7: missing field"), "{shown}");
        assert!(shown.contains("short 1 amd64"), "{shown}");
    }

    #[test]
    fn wrong_version_or_truncated_input() {
        let v1 = parse(b"/var/cache/apt/archives/x.deb\n", "stdin");
        assert_eq!(v1.errors.len(), 1);
        assert!(v1.errors[0].to_string().contains("stdin:1: expected \"VERSION 3\""));
        let v2 = parse(b"VERSION 2\n\n", "stdin");
        assert_eq!(v2.errors[0].line, 1);
        let cut = parse(b"VERSION 3\nA=b\n", "stdin");
        assert!(cut.errors[0].message.contains("ended before the blank line"));
        let empty = parse(b"", "stdin");
        assert_eq!(empty.errors.len(), 1);
    }

    #[test]
    fn actions_print_as_apt_wrote_them() {
        for line in [
            "libdemo1 1.0 amd64 same < 2.0 amd64 same /srv/repo/./libdemo1_2.0_amd64.deb",
            "demod 2.0 amd64 none > - - none **REMOVE**",
            "newpkg - - none < 1 all foreign **CONFIGURE**",
            "x11 1 amd64 none = 1 amd64 none **ERROR**",
        ] {
            assert_eq!(parse_action(line).unwrap().to_string(), line);
        }
        let cross = parse_action("tool 1 amd64 foreign < 2 arm64 foreign /t.deb").unwrap();
        assert_eq!(cross.archs(), ["amd64", "arm64"]);
    }

    #[test]
    fn paths_with_spaces_stay_whole() {
        let a = parse_action("pk 1 amd64 none < 2 amd64 none /srv/my repo/p.deb").unwrap();
        assert_eq!(a.step, Step::Unpack("/srv/my repo/p.deb".into()));
    }

    #[test]
    fn booleans_as_apt_spells_them() {
        assert_eq!(parse_bool("False"), Some(false));
        assert_eq!(parse_bool("yes"), Some(true));
        assert_eq!(parse_bool("flase"), None);
    }
}
