//! The import statements of a Python source file, found without running it.
//!
//! A small lexer joins logical lines (brackets, backslash continuations),
//! drops comments and string contents (a docstring that says "import os"
//! imports nothing), and the statements that start with `import` or `from`
//! are read. Every statement counts wherever it is: both branches of a
//! `try: … except ImportError:`, the body of a function. Imports by
//! computed name (`importlib.import_module(x)`, `__import__(x)`, `exec`)
//! are not seen; README.md says so.

/// One import statement, or one module of an `import a, b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Leading dots of a relative import: 0 absolute, 1 `.`, 2 `..`.
    pub level: usize,
    /// The dotted module name, empty in `from . import x`.
    pub module: String,
    /// The names of `from MODULE import NAMES`, each possibly a submodule.
    pub names: Vec<String>,
}

/// The import statements of `src`.
pub fn imports(src: &[u8]) -> Vec<Import> {
    let mut out = Vec::new();
    for line in logical_lines(src) {
        for stmt in line.split(';') {
            statement(strip_compound(stmt.trim()), &mut out);
        }
    }
    out
}

/// Bytes the lexer must look at; runs of other bytes are copied whole.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let bytes = b"#'\"\\()[]{}\n";
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
};

/// The logical lines of the source that mention `import`, with comments
/// removed and every string literal replaced by `""`. (A standard library
/// walk reads megabytes; most lines import nothing.)
fn logical_lines(src: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut emit = |cur: &mut Vec<u8>| {
        if memchr::memmem::find(cur, b"import").is_some() {
            lines.push(String::from_utf8_lossy(cur).into_owned());
        }
        cur.clear();
    };
    let mut depth = 0usize;
    let mut i = 0;
    while i < src.len() {
        let run = src[i..]
            .iter()
            .position(|&b| SPECIAL[b as usize])
            .unwrap_or(src.len() - i);
        cur.extend_from_slice(&src[i..i + run]);
        i += run;
        let Some(&b) = src.get(i) else { break };
        match b {
            b'#' => {
                i = memchr::memchr(b'\n', &src[i..]).map_or(src.len(), |n| i + n);
                continue;
            }
            b'\'' | b'"' => {
                i = skip_string(src, i);
                cur.extend_from_slice(b"\"\"");
                continue;
            }
            b'\\' if src.get(i + 1) == Some(&b'\n') => {
                cur.push(b' ');
                i += 2;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' if depth == 0 => {
                emit(&mut cur);
                i += 1;
                continue;
            }
            b'\n' => {
                cur.push(b' ');
                i += 1;
                continue;
            }
            _ => {}
        }
        cur.push(b);
        i += 1;
    }
    emit(&mut cur);
    lines
}

/// The index just past the string literal starting at `start` (a quote).
/// An unterminated literal runs to the end of its line (or of the file,
/// when triple-quoted).
fn skip_string(src: &[u8], start: usize) -> usize {
    let q = src[start];
    let triple = src.get(start + 1) == Some(&q) && src.get(start + 2) == Some(&q);
    let mut i = start + if triple { 3 } else { 1 };
    while i < src.len() {
        let next = if triple {
            memchr::memchr2(q, b'\\', &src[i..])
        } else {
            memchr::memchr3(q, b'\\', b'\n', &src[i..])
        };
        let Some(n) = next else { return src.len() };
        i += n;
        match src[i] {
            b'\\' => i += 2,
            b'\n' => return i,
            _ if !triple => return i + 1,
            _ if src.get(i + 1) == Some(&q) && src.get(i + 2) == Some(&q) => return i + 3,
            _ => i += 1,
        }
    }
    src.len()
}

/// `try: import x`, `except ImportError: import y`, `if a: import z`: the
/// statement after the colon of a one-line compound statement.
fn strip_compound(stmt: &str) -> &str {
    const HEADS: &[&str] = &[
        "try", "else", "finally", "except", "if ", "elif ", "with ", "for ", "while ",
    ];
    if HEADS.iter().any(|h| stmt.starts_with(h)) {
        if let Some((_, body)) = stmt.split_once(':') {
            return body.trim();
        }
    }
    stmt
}

fn is_dotted_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            part.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// The name before an optional ` as alias`.
fn before_as(item: &str) -> &str {
    item.split_whitespace().next().unwrap_or("")
}

fn statement(stmt: &str, out: &mut Vec<Import>) {
    if let Some(rest) = stmt.strip_prefix("import ") {
        for item in rest.split(',') {
            let name = before_as(item);
            if is_dotted_name(name) {
                out.push(Import {
                    level: 0,
                    module: name.to_string(),
                    names: Vec::new(),
                });
            }
        }
    } else if let Some(rest) = stmt.strip_prefix("from ") {
        let Some((module, names)) = rest.split_once(" import") else {
            return;
        };
        let module: String = module.split_whitespace().collect();
        let level = module.bytes().take_while(|&b| b == b'.').count();
        let module = &module[level..];
        let from_package_itself = module.is_empty() && level > 0;
        if !from_package_itself && !is_dotted_name(module) {
            return;
        }
        let names = names
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split(',')
            .map(before_as)
            .filter(|n| is_dotted_name(n))
            .map(str::to_string)
            .collect();
        out.push(Import {
            level,
            module: module.to_string(),
            names,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(src: &str) -> Vec<(usize, String, Vec<String>)> {
        imports(src.as_bytes())
            .into_iter()
            .map(|i| (i.level, i.module, i.names))
            .collect()
    }

    fn abs(m: &str) -> (usize, String, Vec<String>) {
        (0, m.to_string(), Vec::new())
    }

    #[test]
    fn plain_imports_with_aliases() {
        assert_eq!(
            found("import os\nimport a.b as c, d\n  import   e  # comment\n"),
            vec![abs("os"), abs("a.b"), abs("d"), abs("e")]
        );
    }

    #[test]
    fn from_imports_relative_and_parenthesised() {
        let got =
            found("from . import a\nfrom ..b import c as d\nfrom x.y import (\n  p,\n  q as r,\n)\nfrom z import *\n");
        assert_eq!(got[0], (1, String::new(), vec!["a".into()]));
        assert_eq!(got[1], (2, "b".into(), vec!["c".into()]));
        assert_eq!(got[2], (0, "x.y".into(), vec!["p".into(), "q".into()]));
        assert_eq!(got[3], (0, "z".into(), vec![]));
    }

    #[test]
    fn both_branches_of_try_and_one_line_forms() {
        let src = "try:\n    import fast\nexcept ImportError:\n    import slow\ntry: import a\nexcept ImportError: import b\nimport c; import d\n";
        assert_eq!(
            found(src),
            vec![abs("fast"), abs("slow"), abs("a"), abs("b"), abs("c"), abs("d")]
        );
    }

    #[test]
    fn strings_and_comments_import_nothing() {
        let src = "\"\"\"\nimport nope\n\"\"\"\nx = 'import no'\n# import no\ns = '''a\\'''\nimport no2'''\nr = \"from q import r\"\nimport yes \\\n  , also\n";
        assert_eq!(found(src), vec![abs("yes"), abs("also")]);
    }

    #[test]
    fn garbage_is_harmless() {
        assert!(found("import\nfrom\nfrom import x\nimport 3d\nimport (\n").is_empty());
        assert!(imports(&[0xff, 0xfe, b'\'', b'"', b'\\']).is_empty());
        assert!(found("'''unterminated\nimport x").is_empty());
    }
}
