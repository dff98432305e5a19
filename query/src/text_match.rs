//! Token matching of message text, as `match(column, 'text')` and bare search words mean it:
//! the query's tokens appear in the text in order, adjacent, case-insensitively.

use silt_storage::tokenizer::MAX_TOKEN_BYTES;

/// One token of a match pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenPattern {
    /// The whole token, lower-cased.
    Exact(String),
    /// A token starting with this (lower-cased) text: `time*`.
    Prefix(String),
    /// A token matching a glob with `*` (any run) and `?` (one character), lower-cased.
    Glob(String),
}

impl TokenPattern {
    fn matches(&self, token: &str) -> bool {
        match self {
            TokenPattern::Exact(t) => token == t,
            TokenPattern::Prefix(p) => token.starts_with(p.as_str()),
            TokenPattern::Glob(g) => glob_match(g.as_bytes(), token.as_bytes()),
        }
    }
}

/// A parsed match pattern: the token patterns that must appear adjacent and in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatchPattern {
    pub tokens: Vec<TokenPattern>,
}

fn is_token_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// Calls `emit` with each lower-cased token of `text` — tokenizer v1 without the length cut,
/// so a scan confirms the whole token where the index only holds its first bytes.
pub fn for_each_full_token(text: &str, buf: &mut String, mut emit: impl FnMut(&str) -> bool) {
    let mut chars = text.char_indices().peekable();
    while let Some(&(_, c)) = chars.peek() {
        if !is_token_char(c) {
            chars.next();
            continue;
        }
        buf.clear();
        while let Some(&(_, c)) = chars.peek() {
            if !is_token_char(c) {
                break;
            }
            if c.is_ascii() {
                buf.push(c.to_ascii_lowercase());
            } else {
                buf.extend(c.to_lowercase());
            }
            chars.next();
        }
        if !emit(buf) {
            return;
        }
    }
}

impl MatchPattern {
    /// Parses `text`: runs of alphanumeric characters, `*` and `?` are token patterns; anything
    /// else separates them. A run that is only wildcards matches any one token.
    pub fn parse(text: &str) -> Self {
        let mut tokens = Vec::new();
        let mut run = String::new();
        let flush = |run: &mut String, tokens: &mut Vec<TokenPattern>| {
            if run.is_empty() {
                return;
            }
            let body = std::mem::take(run);
            let stars = body.matches('*').count();
            let has_glob = stars > 0 || body.contains('?');
            if !has_glob {
                tokens.push(TokenPattern::Exact(body));
            } else if stars == 1 && body.ends_with('*') && !body.contains('?') && body.len() > 1 {
                tokens.push(TokenPattern::Prefix(body[..body.len() - 1].to_string()));
            } else {
                tokens.push(TokenPattern::Glob(body));
            }
        };
        for c in text.chars() {
            if is_token_char(c) {
                run.extend(c.to_lowercase());
            } else if c == '*' || c == '?' {
                run.push(c);
            } else {
                flush(&mut run, &mut tokens);
            }
        }
        flush(&mut run, &mut tokens);
        Self { tokens }
    }

    /// True when `text` holds the pattern's tokens adjacent and in order. An empty pattern
    /// matches everything.
    pub fn matches(&self, text: &str, scratch: &mut MatchScratch) -> bool {
        let n = self.tokens.len();
        if n == 0 {
            return true;
        }
        // Fast reject: an exact token must occur as a substring of the lower-cased text.
        if let Some(TokenPattern::Exact(first)) = self
            .tokens
            .iter()
            .find(|t| matches!(t, TokenPattern::Exact(_)))
        {
            if text.is_ascii() {
                if scratch.finder.as_ref().is_none_or(|(t, _)| t != first) {
                    let finder = memchr::memmem::Finder::new(first.as_bytes()).into_owned();
                    scratch.finder = Some((first.clone(), finder));
                }
                let (_, finder) = scratch.finder.as_ref().expect("set above");
                if finder.find(lower_ascii(text, &mut scratch.lower)).is_none() {
                    return false;
                }
            }
        }
        scratch.window.clear();
        let mut found = false;
        let window = &mut scratch.window;
        for_each_full_token(text, &mut scratch.token, |token| {
            if n == 1 {
                found = self.tokens[0].matches(token);
                return !found;
            }
            if window.len() == n {
                window.remove(0);
            }
            window.push(token.to_string());
            if window.len() == n && window.iter().zip(&self.tokens).all(|(t, p)| p.matches(t)) {
                found = true;
                return false;
            }
            true
        });
        found
    }
}

fn lower_ascii<'a>(text: &str, buf: &'a mut Vec<u8>) -> &'a [u8] {
    buf.clear();
    buf.extend(text.bytes().map(|b| b.to_ascii_lowercase()));
    buf
}

/// Reusable buffers for [`MatchPattern::matches`].
#[derive(Default)]
pub struct MatchScratch {
    /// The substring searcher of the pattern's first exact token, built once per pattern.
    finder: Option<(String, memchr::memmem::Finder<'static>)>,
    token: String,
    lower: Vec<u8>,
    window: Vec<String>,
}

/// Glob match of a whole string: `*` any run of characters, `?` exactly one character.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let pattern = String::from_utf8_lossy(pattern);
    let text = String::from_utf8_lossy(text);
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// True when an index term value (cut to `MAX_TOKEN_BYTES`) may stand for a token matching
/// `glob`: it matches, or it was cut and the glob could match a longer token starting with it.
pub fn glob_may_match_indexed(glob: &str, indexed: &[u8]) -> bool {
    indexed.len() + 4 > MAX_TOKEN_BYTES || glob_match(glob.as_bytes(), indexed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        MatchPattern::parse(pattern).matches(text, &mut MatchScratch::default())
    }

    #[test]
    fn tokens_adjacent_in_order_case_insensitive() {
        assert!(m("timeout", "Request TIMEOUT after 3s"));
        assert!(m("payment-service", "call payment service failed"));
        assert!(!m("payment-service", "service payment"));
        assert!(!m("payment-service", "payment to service"));
        assert!(m("\"connection reset\"", "error: Connection reset by peer"));
        assert!(!m("time", "timeout"));
    }

    #[test]
    fn prefixes_and_globs() {
        assert_eq!(
            MatchPattern::parse("Time*").tokens,
            vec![TokenPattern::Prefix("time".into())]
        );
        assert!(m("time*", "timeout"));
        assert!(m("t?me*", "TIMEOUT"));
        assert!(m("*out", "timeout"));
        assert!(!m("*out", "timer"));
        assert!(m("conn* reset", "connection reset"));
        assert!(glob_match(b"a*b?c", b"axxxbyc"));
        assert!(!glob_match(b"a*b?c", b"axxxbc"));
    }

    #[test]
    fn full_tokens_not_cut() {
        let long = "a".repeat(100);
        assert!(m(&long, &format!("x {long} y")));
        assert!(!m(&long, &format!("x {}b y", long)));
        assert!(m("ÉCOLE", "l'école ferme"));
    }
}
