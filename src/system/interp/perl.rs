//! The `use` and `require` statements of a Perl source file, found
//! without running it.
//!
//! Perl cannot be parsed short of running it, so this is a line-based
//! approximation: POD and everything after `__END__`/`__DATA__` are
//! skipped, comments dropped, and statements (split at `;`, `{`, `}`) that
//! start with `use`, `no` or `require` are read. `require $var`, string
//! `eval` and `Module::Runtime`-style loading are not seen (README.md).

/// What one statement loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load {
    /// A module by name: `use Foo::Bar`, `require Foo::Bar`, the classes
    /// of `use parent`/`use base`.
    Module(String),
    /// A file by path: `require "x.pl"`.
    File(String),
    /// Directories `use lib` puts in front of `@INC`.
    Lib(Vec<String>),
}

/// The loads of `src`, in order.
pub fn loads(src: &[u8]) -> Vec<Load> {
    let text = String::from_utf8_lossy(src);
    let mut code = String::new();
    let mut pod = false;
    for line in text.lines() {
        if pod {
            pod = !line.starts_with("=cut");
            continue;
        }
        if line.starts_with('=') && line[1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            pod = true;
            continue;
        }
        if line.starts_with("__END__") || line.starts_with("__DATA__") {
            break;
        }
        code.push_str(strip_comment(line));
        code.push('\n');
    }
    let mut out = Vec::new();
    for stmt in code.split([';', '{', '}']) {
        statement(stmt.trim(), &mut out);
    }
    out
}

/// A line without its `#` comment. A `#` inside quotes or after `$`
/// (`$#array`) does not start one.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q && prev != '\\' => quote = None,
            (None, '#') if prev != '$' => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

fn is_module_name(s: &str) -> bool {
    !s.is_empty()
        && s.split("::").all(|p| {
            p.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// The strings of a Perl list: quoted words and `qw(...)` words; bare
/// words such as `-norequire` too.
fn list_words(list: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')');
        if let Some(q) = rest.strip_prefix("qw") {
            let Some(open) = q.chars().next() else { break };
            let close = match open {
                '(' => ')',
                '[' => ']',
                '<' => '>',
                c => c,
            };
            let body = &q[open.len_utf8()..];
            let end = body.find(close).unwrap_or(body.len());
            words.extend(body[..end].split_whitespace().map(str::to_string));
            rest = body.get(end + close.len_utf8()..).unwrap_or("");
        } else if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
            let body = &rest[1..];
            let end = body.find(q).unwrap_or(body.len());
            words.push(body[..end].to_string());
            rest = body.get(end + 1..).unwrap_or("");
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
                .unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            words.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    words
}

fn statement(stmt: &str, out: &mut Vec<Load>) {
    let (keyword, rest) = match stmt.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r.trim()),
        None => return,
    };
    if !matches!(keyword, "use" | "no" | "require") {
        return;
    }
    if keyword == "require" && rest.starts_with(['\'', '"']) {
        if let Some(file) = list_words(rest).into_iter().next() {
            if !file.is_empty() && !file.contains('$') {
                out.push(Load::File(file));
            }
        }
        return;
    }
    let (name, args) = match rest.split_once(|c: char| c.is_whitespace() || c == '(' || c == '\'' || c == '"') {
        Some((n, _)) => (n, &rest[n.len()..]),
        None => (rest, ""),
    };
    if !is_module_name(name) {
        return; // `use 5.010`, `use v5.36`, `require $x`
    }
    match (keyword, name) {
        ("use", "lib") => out.push(Load::Lib(list_words(args))),
        ("use", "parent" | "base") => {
            out.push(Load::Module(name.to_string()));
            let words = list_words(args);
            // -norequire: the classes are defined in this very file.
            if !words.iter().any(|w| w == "-norequire") {
                out.extend(words.into_iter().filter(|w| is_module_name(w)).map(Load::Module));
            }
        }
        _ => out.push(Load::Module(name.to_string())),
    }
}

/// `Foo::Bar` → `Foo/Bar.pm`.
pub fn module_file(name: &str) -> String {
    format!("{}.pm", name.replace("::", "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Load {
        Load::Module(s.into())
    }

    #[test]
    fn use_require_and_versions() {
        let src = "#!/usr/bin/perl\nuse strict;\nuse 5.010;\nuse v5.36;\nuse Foo::Bar qw(x y);\nrequire Baz;\nrequire \"helper.pl\";\nrequire $dynamic;\nno warnings 'once';\nif ($x) { require Lazy::One }\n";
        assert_eq!(
            loads(src.as_bytes()),
            vec![
                m("strict"),
                m("Foo::Bar"),
                m("Baz"),
                Load::File("helper.pl".into()),
                m("warnings"),
                m("Lazy::One")
            ]
        );
    }

    #[test]
    fn parent_base_and_norequire() {
        let src = "use parent qw(A::One B);\nuse parent -norequire, 'Local';\nuse base 'C';\nuse parent('D');\n";
        assert_eq!(
            loads(src.as_bytes()),
            vec![
                m("parent"),
                m("A::One"),
                m("B"),
                m("parent"),
                m("base"),
                m("C"),
                m("parent"),
                m("D")
            ]
        );
    }

    #[test]
    fn use_lib_lists() {
        let src = "use lib '/opt/a', \"/opt/b\";\nuse lib qw(/x /y);\nuse lib \"$FindBin::Bin/../lib\";\n";
        assert_eq!(
            loads(src.as_bytes()),
            vec![
                Load::Lib(vec!["/opt/a".into(), "/opt/b".into()]),
                Load::Lib(vec!["/x".into(), "/y".into()]),
                Load::Lib(vec!["$FindBin::Bin/../lib".into()]),
            ]
        );
    }

    #[test]
    fn pod_comments_and_end_hide_code() {
        let src = "use A; # use Not::This;\n=head1 NAME\n\nuse Pod::Thing;\n\n=cut\nmy $n = $#list; use B;\n__END__\nuse After::End;\n";
        assert_eq!(loads(src.as_bytes()), vec![m("A"), m("B")]);
        assert!(loads(&[0xff, b'u', b's', b'e', b' ', 0xfe]).is_empty());
        assert!(loads(b"use;\nrequire;\n=\nrequire $x;\nuse 5;").is_empty());
    }

    #[test]
    fn module_names_become_paths() {
        assert_eq!(module_file("Foo::Bar::Baz"), "Foo/Bar/Baz.pm");
    }
}
