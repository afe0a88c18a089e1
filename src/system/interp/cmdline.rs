//! Which interpreter a process runs, and which script it was started with.
//!
//! The interpreter is known by the name of its executable only (the
//! `exe` link), never by running it: running an inspected process's
//! interpreter is what gave needrestart CVE-2024-48990 and its siblings.
//! The script comes from `/proc/PID/cmdline`, parsed the way each
//! interpreter parses its options. Both are input from the process, so
//! every malformed shape (empty, non-UTF-8, options without their argument)
//! yields "no script", never a panic.

/// The interpreters whose scripts are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    Python,
    Perl,
    Ruby,
    Shell,
    Node,
    Php,
}

/// An interpreter, from its executable's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interpreter {
    pub lang: Lang,
    /// The version the name carries (`3.11` of `python3.11`, `5.36.0` of
    /// `perl5.36.0`), empty when it carries none.
    pub version: String,
}

/// Recognises an interpreter by the file name of its executable.
pub fn interpreter(exe: &[u8]) -> Option<Interpreter> {
    let name = exe.rsplit(|&b| b == b'/').next()?;
    let name = std::str::from_utf8(name).ok()?;
    let versioned = |stem: &str| -> Option<String> {
        let v = name.strip_prefix(stem)?;
        v.chars().all(|c| c.is_ascii_digit() || c == '.').then(|| v.to_string())
    };
    let (lang, version) = if let Some(v) = versioned("python") {
        // Python 2 has other module paths and is gone from current releases.
        if !v.starts_with('3') {
            return None;
        }
        (Lang::Python, v)
    } else if let Some(v) = versioned("perl") {
        (Lang::Perl, v)
    } else if let Some(v) = versioned("ruby") {
        (Lang::Ruby, v)
    } else if let Some(v) = versioned("php") {
        (Lang::Php, v)
    } else if matches!(name, "bash" | "dash" | "sh" | "ash" | "ksh" | "mksh" | "zsh") {
        (Lang::Shell, String::new())
    } else if matches!(name, "node" | "nodejs") {
        (Lang::Node, String::new())
    } else {
        return None;
    };
    Some(Interpreter { lang, version })
}

/// What the interpreter runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A script file, as written on the command line.
    Script(Vec<u8>),
    /// A module looked up on the module path (`python -m pkg.mod`).
    Module(String),
    /// Code on the command line, standard input, or nothing recognisable.
    Nothing,
}

/// A parsed interpreter command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub target: Target,
    /// Directories added to the module path (`perl -I`, `ruby -I`).
    pub include: Vec<Vec<u8>>,
    /// Modules loaded before the script (`perl -MFoo`, `ruby -r foo`).
    pub preload: Vec<String>,
}

/// How one interpreter reads its options.
struct Syntax {
    /// Letters that take an argument, attached or as the next word.
    arg: &'static [u8],
    /// Letters whose optional argument can only be attached: they end
    /// the word.
    rest: &'static [u8],
    /// Letters that mean the code is not a file (`-c`, `-e`, stdin).
    code: &'static [u8],
    /// Long options that take the next word (unless written `--x=y`).
    long_arg: &'static [&'static str],
    /// Long options that mean the code is not a file.
    long_code: &'static [&'static str],
}

fn syntax(lang: Lang) -> Syntax {
    match lang {
        Lang::Python => Syntax {
            arg: b"WXm",
            rest: b"",
            code: b"c",
            long_arg: &["--check-hash-based-pycs"],
            long_code: &[],
        },
        Lang::Perl => Syntax {
            arg: b"IMme",
            rest: b"lx0iFCdDV",
            code: b"eE",
            long_arg: &[],
            long_code: &[],
        },
        Lang::Ruby => Syntax {
            arg: b"IrCe",
            rest: b"EFx0lKW",
            code: b"e",
            long_arg: &[],
            long_code: &[],
        },
        Lang::Shell => Syntax {
            arg: b"oO",
            rest: b"",
            code: b"cs",
            long_arg: &["--rcfile", "--init-file"],
            long_code: &[],
        },
        Lang::Node => Syntax {
            arg: b"rC",
            rest: b"",
            code: b"ep",
            long_arg: &[
                "--require",
                "--import",
                "--loader",
                "--experimental-loader",
                "--conditions",
                "--title",
            ],
            long_code: &["--eval", "--print"],
        },
        Lang::Php => Syntax {
            arg: b"cdzft",
            rest: b"",
            code: b"rRBES",
            long_arg: &[],
            long_code: &[],
        },
    }
}

/// Splits a `/proc/PID/cmdline` into its words.
pub fn words(cmdline: &[u8]) -> Vec<&[u8]> {
    let trimmed = cmdline.strip_suffix(b"\0").unwrap_or(cmdline);
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed.split(|&b| b == 0).collect()
}

/// Parses `argv` (with the interpreter's own name first) for `lang`.
pub fn parse(lang: Lang, argv: &[&[u8]]) -> Invocation {
    let sx = syntax(lang);
    let mut inv = Invocation {
        target: Target::Nothing,
        include: Vec::new(),
        preload: Vec::new(),
    };
    let mut i = 1;
    while i < argv.len() {
        let word = argv[i];
        i += 1;
        if word == b"--" {
            if let Some(s) = argv.get(i) {
                inv.target = Target::Script(s.to_vec());
            }
            return inv;
        }
        if word == b"-" || word.is_empty() {
            return inv; // standard input
        }
        if let Some(long) = word.strip_prefix(b"--") {
            let long = String::from_utf8_lossy(long);
            let name = format!("--{}", long.split('=').next().unwrap_or(""));
            if sx.long_code.contains(&name.as_str()) {
                return inv;
            }
            if sx.long_arg.contains(&name.as_str()) && !long.contains('=') {
                i += 1;
            }
            continue;
        }
        let plus = lang == Lang::Shell && word.first() == Some(&b'+');
        if word.first() != Some(&b'-') && !plus {
            // php's script may also come as `-f FILE`, handled below.
            inv.target = Target::Script(word.to_vec());
            return inv;
        }
        let mut j = 1;
        while j < word.len() {
            let c = word[j];
            j += 1;
            if sx.rest.contains(&c) {
                break;
            }
            if sx.code.contains(&c) {
                return inv;
            }
            if !sx.arg.contains(&c) {
                continue;
            }
            let value: &[u8] = if j < word.len() {
                &word[j..]
            } else {
                i += 1;
                match argv.get(i - 1) {
                    Some(v) => v,
                    None => return inv,
                }
            };
            if let Some(done) = option_with_value(lang, c, value, &mut inv) {
                inv.target = done;
                return inv;
            }
            break;
        }
    }
    inv
}

/// Acts on an option that took `value`; `Some` ends the parse with that target.
fn option_with_value(lang: Lang, c: u8, value: &[u8], inv: &mut Invocation) -> Option<Target> {
    let text = || String::from_utf8_lossy(value).into_owned();
    match (lang, c) {
        (Lang::Python, b'm') => Some(Target::Module(text())),
        (Lang::Php, b'f') => Some(Target::Script(value.to_vec())),
        (Lang::Perl | Lang::Ruby, b'I') => {
            inv.include.push(value.to_vec());
            None
        }
        (Lang::Perl, b'M' | b'm') => {
            // `-MFoo=a,b` imports a and b from Foo; `-M-Foo` is `no Foo`.
            let name = text();
            let name = name.trim_start_matches('-');
            let name = name.split(['=', ' ']).next().unwrap_or("");
            if !name.is_empty() {
                inv.preload.push(name.to_string());
            }
            None
        }
        (Lang::Ruby, b'r') => {
            inv.preload.push(text());
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(exe: &str, line: &str) -> Invocation {
        let lang = interpreter(exe.as_bytes()).unwrap().lang;
        let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        parse(lang, &argv)
    }

    fn script(s: &str) -> Target {
        Target::Script(s.as_bytes().to_vec())
    }

    #[test]
    fn recognises_interpreters_by_name_only() {
        let v = |e: &str| interpreter(e.as_bytes()).map(|i| (i.lang, i.version));
        assert_eq!(v("/usr/bin/python3.11"), Some((Lang::Python, "3.11".into())));
        assert_eq!(v("/usr/bin/python3"), Some((Lang::Python, "3".into())));
        assert_eq!(v("/usr/bin/perl"), Some((Lang::Perl, String::new())));
        assert_eq!(v("/usr/bin/perl5.36.0"), Some((Lang::Perl, "5.36.0".into())));
        assert_eq!(v("/usr/bin/dash"), Some((Lang::Shell, String::new())));
        assert_eq!(v("/usr/bin/python2.7"), None);
        assert_eq!(v("/usr/bin/python3-config"), None);
        assert_eq!(v("/usr/sbin/sshd"), None);
        assert_eq!(v(""), None);
        assert_eq!(interpreter(b"/usr/bin/\xffperl"), None);
    }

    #[test]
    fn python_options_and_their_arguments() {
        assert_eq!(
            run("python3", "python3 -u -W ignore /usr/bin/d --x").target,
            script("/usr/bin/d")
        );
        assert_eq!(
            run("python3", "python3 -X dev -Wignore -OO d.py").target,
            script("d.py")
        );
        assert_eq!(run("python3", "python3 -uWignore d.py").target, script("d.py"));
        assert_eq!(
            run("python3", "python3 -m pkg.mod arg").target,
            Target::Module("pkg.mod".into())
        );
        assert_eq!(run("python3", "python3 -mpkg").target, Target::Module("pkg".into()));
        assert_eq!(run("python3", "python3 -c import-os x.py").target, Target::Nothing);
        assert_eq!(run("python3", "python3 -").target, Target::Nothing);
        assert_eq!(run("python3", "python3 -W").target, Target::Nothing);
        assert_eq!(run("python3", "python3 -- -x.py").target, script("-x.py"));
        assert_eq!(run("python3", "python3").target, Target::Nothing);
    }

    #[test]
    fn perl_includes_preloads_and_code() {
        let inv = run("perl", "perl -w -I /opt/lib -Ilib2 -MFoo::Bar=x,y -T /usr/sbin/d arg");
        assert_eq!(inv.target, script("/usr/sbin/d"));
        assert_eq!(inv.include, vec![b"/opt/lib".to_vec(), b"lib2".to_vec()]);
        assert_eq!(inv.preload, vec!["Foo::Bar".to_string()]);
        assert_eq!(run("perl", "perl -e print x.pl").target, Target::Nothing);
        assert_eq!(run("perl", "perl -l -0777 -i.bak x.pl").target, script("x.pl"));
    }

    #[test]
    fn shells_node_php_ruby() {
        assert_eq!(
            run("bash", "bash -x -o pipefail /usr/lib/d/loop.sh").target,
            script("/usr/lib/d/loop.sh")
        );
        assert_eq!(run("sh", "sh -c sleep x.sh").target, Target::Nothing);
        assert_eq!(run("bash", "bash +o posix --rcfile r s.sh").target, script("s.sh"));
        assert_eq!(
            run("node", "node --max-old-space-size=100 -r dotenv app.js").target,
            script("app.js")
        );
        assert_eq!(run("node", "node --eval 1").target, Target::Nothing);
        assert_eq!(run("php8.2", "php8.2 -d a=b -f w.php").target, script("w.php"));
        assert_eq!(run("php", "php -r echo").target, Target::Nothing);
        let r = run("ruby", "ruby -I lib -r json app.rb");
        assert_eq!((r.target, r.preload), (script("app.rb"), vec!["json".to_string()]));
    }

    #[test]
    fn cmdline_words_split_on_nul() {
        assert_eq!(words(b"python3\0-u\0d.py\0"), vec![&b"python3"[..], b"-u", b"d.py"]);
        assert!(words(b"").is_empty());
        assert_eq!(words(b"a\0\0b\0"), vec![&b"a"[..], b"", b"b"]);
    }
}
