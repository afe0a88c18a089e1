//! libzypp's plugin frames (zypp-core/rpc/PluginFrame.cc): a STOMP-like
//! text protocol on the plugin's stdin and stdout.
//!
//! ```text
//! COMMAND
//! key:value            (header lines; `\n`, `\r`, `\\`, `\c` escaped)
//!                      (an empty line ends the headers)
//! body^@               (up to a NUL, or `content-length` bytes and a NUL)
//! ```

use anyhow::{bail, Context, Result};
use std::io::{BufRead, Read, Write};

/// Frames larger than this are refused: a transaction of ten thousand
/// packages is well under a megabyte of JSON.
pub const MAX_FRAME: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Reads one line, without its `\n`; `None` at a clean end of input.
fn line(r: &mut impl BufRead, what: &str) -> Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_FRAME)
        .read_until(b'\n', &mut buf)
        .with_context(|| format!("failed to read the {what}"))?;
    if n == 0 {
        return Ok(None);
    }
    if buf.pop() != Some(b'\n') {
        bail!("the {what} ends without a newline");
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// Reads the next frame; `None` when libzypp closed our stdin.
pub fn read(r: &mut impl BufRead) -> Result<Option<Frame>> {
    // Frames may be separated by stray newlines (some writers add one).
    let command = loop {
        match line(r, "frame command")? {
            None => return Ok(None),
            Some(c) if c.is_empty() => continue,
            Some(c) => break c,
        }
    };
    let mut headers = Vec::new();
    loop {
        let h = line(r, "frame header")?.context("input ends inside the frame headers")?;
        if h.is_empty() {
            break;
        }
        let (k, v) = h
            .split_once(':')
            .with_context(|| format!("header without a colon in {command}: {h:?}"))?;
        headers.push((unescape(k), unescape(v)));
    }
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.trim().parse::<u64>())
        .transpose()
        .with_context(|| format!("bad content-length in {command}"))?;
    let mut body = Vec::new();
    match length {
        Some(n) if n > MAX_FRAME => bail!("{command}: body of {n} bytes is too large"),
        Some(n) => {
            body.resize(n as usize + 1, 0);
            r.read_exact(&mut body)
                .with_context(|| format!("input ends inside the body of {command}"))?;
            if body.pop() != Some(0) {
                bail!("{command}: no NUL after the body");
            }
        }
        None => {
            (&mut *r)
                .take(MAX_FRAME)
                .read_until(0, &mut body)
                .with_context(|| format!("failed to read the body of {command}"))?;
            if body.pop() != Some(0) {
                bail!("{command}: input ends before the body's NUL");
            }
        }
    }
    headers.retain(|(k, _)| k != "content-length");
    Ok(Some(Frame { command, headers, body }))
}

/// Writes a frame with no headers and no body (`ACK`, `_ENOMETHOD`).
pub(crate) fn reply(w: &mut impl Write, command: &str) -> Result<()> {
    w.write_all(format!("{command}\ncontent-length:0\n\n\0").as_bytes())
        .and_then(|()| w.flush())
        .with_context(|| format!("failed to send {command} to libzypp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Result<Vec<Frame>> {
        let mut r = input;
        let mut out = Vec::new();
        while let Some(f) = read(&mut r)? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn reads_frames_with_and_without_a_length() {
        let input = b"PLUGINBEGIN\nuserdata:TID\\cfoo\n\n\0COMMITEND\ncontent-length:2\n\n{}\0\nPLUGINEND\n\n\0";
        let f = all(input).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].command, "PLUGINBEGIN");
        assert_eq!(f[0].header("userdata"), Some("TID:foo"));
        assert_eq!(f[1].body, b"{}");
        assert!(f[1].header("content-length").is_none());
        assert_eq!(f[2].command, "PLUGINEND");
    }

    #[test]
    fn broken_frames_are_errors_not_panics() {
        for bad in [
            &b"PLUGINBEGIN"[..],
            b"PLUGINBEGIN\n",
            b"X\nno colon\n\n\0",
            b"X\ncontent-length:5\n\nab\0",
            b"X\ncontent-length:2\n\nabc",
            b"X\ncontent-length:-1\n\n\0",
            b"X\n\nno nul",
        ] {
            assert!(all(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(all(b"").unwrap().is_empty());
    }

    #[test]
    fn replies_are_frames_libzypp_reads() {
        let mut out = Vec::new();
        reply(&mut out, "ACK").unwrap();
        assert_eq!(out, b"ACK\ncontent-length:0\n\n\0");
        let f = all(&out).unwrap();
        assert_eq!(f[0].command, "ACK");
        assert!(f[0].body.is_empty());
    }
}
