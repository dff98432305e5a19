//! Log search language parser: turns a query string into a [`Query`] AST.
//! Owns the grammar (terms, fields, operators, precedence) and its error messages.

use std::fmt;
use std::iter::Peekable;
use std::vec::IntoIter;

/// A parsed query. `All` matches every row (empty query or a lone `*`).
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Matches every row.
    All,
    /// Every child must match (always at least 2 children).
    And(Vec<Query>),
    /// At least one child must match (always at least 2 children).
    Or(Vec<Query>),
    /// The child must not match.
    Not(Box<Query>),
    /// A single test of one field against one value.
    Match { field: Field, value: Value },
}

/// The field a term applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// No field given (or `message:`).
    Message,
    /// `level:`
    Level,
    /// `service:`
    Service,
    /// `host:`
    Host,
    /// `trace_id:`
    TraceId,
    /// `span_id:`
    SpanId,
    /// `stream:`
    Stream,
    /// `attributes.<key>:`; the key may contain dots, e.g. `attributes.http.status`.
    Attribute(String),
}

impl Field {
    /// The canonical name as written in queries: `"message"`, `"level"`, …, `"attributes.<key>"`.
    pub fn name(&self) -> String {
        match self {
            Field::Message => "message".into(),
            Field::Level => "level".into(),
            Field::Service => "service".into(),
            Field::Host => "host".into(),
            Field::TraceId => "trace_id".into(),
            Field::SpanId => "span_id".into(),
            Field::Stream => "stream".into(),
            Field::Attribute(key) => format!("attributes.{key}"),
        }
    }
}

/// The value a field is tested against.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A bare word, e.g. `timeout`, `payment-service`, `10.0.0.1`.
    Word(String),
    /// A "quoted phrase", escapes `\"` and `\\` resolved.
    Phrase(String),
    /// A word ending in `*` with no other wildcard: `time*` → `Prefix("time")`.
    Prefix(String),
    /// A word containing `*` or `?` anywhere else: `ti*ut`, `*out`, `a?c*`, kept verbatim.
    Wildcard(String),
    /// `field:*` — the field is present (non-null).
    Exists,
    /// `/regex/` — the text between the slashes, `\/` resolved to `/`, other escapes verbatim.
    Regex(String),
    /// `field:>=WARN`, `attributes.duration_ms:>100`, `field:<5`, `field:<=x`, `field:>x`.
    Compare(CompareOp, String),
}

/// The operator of a [`Value::Compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// What went wrong and where. Display: "unexpected ')' at column 14" (1-based, in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchError {
    /// What went wrong.
    pub message: String,
    /// 1-based character column the problem points at.
    pub column: usize,
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.message, self.column)
    }
}

impl std::error::Error for SearchError {}

/// Parses a search query. Empty or whitespace-only input yields [`Query::All`].
pub fn parse(input: &str) -> Result<Query, SearchError> {
    let tokens = Lexer {
        chars: input.chars().collect(),
        pos: 0,
    }
    .tokens()?;
    if tokens.is_empty() {
        return Ok(Query::All);
    }
    let end = input.chars().count() + 1;
    let mut parser = Parser {
        toks: tokens.into_iter().peekable(),
        end,
    };
    let query = parser.or()?;
    match parser.toks.next() {
        // `or()` only stops at the end or at a `)` it cannot match.
        Some(t) => fail("unexpected ')'", t.col),
        None => Ok(query),
    }
}

const FIELD_LIST: &str =
    "message, level, service, host, trace_id, span_id, stream, attributes.<key>";

fn fail<T>(message: impl Into<String>, column: usize) -> Result<T, SearchError> {
    Err(SearchError {
        message: message.into(),
        column,
    })
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '"')
}

/// Letters, digits, `_`, `.`, not starting with a digit or dot (so `12:30:01` is a word).
fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn known_field(lower: &str) -> Option<Field> {
    use Field::*;
    [Message, Level, Service, Host, TraceId, SpanId, Stream]
        .into_iter()
        .find(|f| f.name() == lower)
}

/// Classifies a bare word; `None` means a lone `*`.
fn word_value(word: String) -> Option<Value> {
    let wild = |s: &str| s.contains(['*', '?']);
    if word == "*" {
        None
    } else if let Some(prefix) = word.strip_suffix('*').filter(|p| !wild(p)) {
        Some(Value::Prefix(prefix.to_string()))
    } else if wild(&word) {
        Some(Value::Wildcard(word))
    } else {
        Some(Value::Word(word))
    }
}

/// A field-less word term; a lone `*` matches everything.
fn bare(word: String) -> Tok {
    word_value(word).map_or(Tok::Term(Query::All), message)
}

fn message(value: Value) -> Tok {
    Tok::Term(Query::Match {
        field: Field::Message,
        value,
    })
}

/// Builds an AND (`and`) or OR node: flattens nested same-kind nodes, collapses 0/1 children.
/// `All` is dropped from an AND and absorbs an OR.
fn combine(items: Vec<Query>, and: bool) -> Query {
    let mut out = Vec::new();
    for q in items {
        match (q, and) {
            (Query::All, true) => {}
            (Query::All, false) => return Query::All,
            (Query::And(v), true) | (Query::Or(v), false) => out.extend(v),
            (q, _) => out.push(q),
        }
    }
    match out.len() {
        0 | 1 => out.pop().unwrap_or(Query::All),
        _ if and => Query::And(out),
        _ => Query::Or(out),
    }
}

enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Minus,
    Term(Query),
}

struct Token {
    tok: Tok,
    col: usize,
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    fn starts_with(&self, s: &str) -> bool {
        let mut rest = self.chars[self.pos..].iter();
        s.chars().all(|c| rest.next() == Some(&c))
    }

    fn run(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn tokens(mut self) -> Result<Vec<Token>, SearchError> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            let start = self.pos;
            let tok = match c {
                _ if c.is_whitespace() => {
                    self.pos += 1;
                    continue;
                }
                '(' | ')' => {
                    self.pos += 1;
                    if c == '(' { Tok::LParen } else { Tok::RParen }
                }
                '-' => {
                    self.pos += 1;
                    if self.peek().is_none_or(char::is_whitespace) {
                        return fail("expected a term after '-'", start + 1);
                    }
                    Tok::Minus
                }
                _ => self.term()?,
            };
            out.push(Token {
                tok,
                col: start + 1,
            });
        }
        Ok(out)
    }

    /// A keyword or a term (with optional `field:`), starting at a non-space, non-paren char.
    fn term(&mut self) -> Result<Tok, SearchError> {
        let start = self.pos;
        match self.peek() {
            Some('"') => return Ok(message(Value::Phrase(self.phrase()?))),
            Some('/') => return Ok(message(Value::Regex(self.regex()?))),
            _ => {}
        }
        let head = self.run(|c| is_word_char(c) && c != ':');
        if self.peek() == Some(':') {
            if let Some(field) = self.field(&head, start)? {
                self.pos += 1;
                let value = self.value(&head)?;
                return Ok(Tok::Term(Query::Match { field, value }));
            }
            self.pos = start;
            return Ok(bare(self.run(is_word_char)));
        }
        Ok(match head.as_str() {
            "AND" => Tok::And,
            "OR" => Tok::Or,
            "NOT" => Tok::Not,
            _ => bare(head),
        })
    }

    /// Resolves the text before `:`; `Ok(None)` means the whole token is a plain word.
    fn field(&self, head: &str, start: usize) -> Result<Option<Field>, SearchError> {
        let lower = head.to_ascii_lowercase();
        if lower.starts_with("attributes.") {
            // ASCII lowercasing keeps byte offsets, so byte 11 is a boundary in `head` too.
            let key = &head["attributes.".len()..];
            if key.is_empty() {
                return fail("missing key after 'attributes.'", start + 1);
            }
            return Ok(Some(Field::Attribute(key.to_string())));
        }
        if !is_ident(head) || self.starts_with("://") {
            return Ok(None);
        }
        match known_field(&lower) {
            Some(field) => Ok(Some(field)),
            None => fail(
                format!("unknown field '{head}' (fields: {FIELD_LIST})"),
                start + 1,
            ),
        }
    }

    /// The value after `field:`.
    fn value(&mut self, field: &str) -> Result<Value, SearchError> {
        let ops = [
            (">=", CompareOp::Ge),
            ("<=", CompareOp::Le),
            (">", CompareOp::Gt),
            ("<", CompareOp::Lt),
        ];
        if let Some((sym, op)) = ops.into_iter().find(|(sym, _)| self.starts_with(sym)) {
            self.pos += sym.len();
            let operand = match self.peek() {
                Some('"') => self.phrase()?,
                Some(c) if is_word_char(c) => self.run(is_word_char),
                _ => return fail(format!("missing value after '{field}:{sym}'"), self.pos + 1),
            };
            return Ok(Value::Compare(op, operand));
        }
        match self.peek() {
            Some('"') => Ok(Value::Phrase(self.phrase()?)),
            Some('/') => Ok(Value::Regex(self.regex()?)),
            Some(c) if is_word_char(c) => {
                Ok(word_value(self.run(is_word_char)).unwrap_or(Value::Exists))
            }
            _ => fail(format!("missing value after '{field}:'"), self.pos + 1),
        }
    }

    /// `"..."` with `\"` and `\\` resolved; other backslashes kept.
    fn phrase(&mut self) -> Result<String, SearchError> {
        let open = self.pos + 1;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return fail("unterminated quote", open),
                Some('"') => break,
                Some('\\') => match self.peek() {
                    Some(c @ ('"' | '\\')) => {
                        self.pos += 1;
                        s.push(c);
                    }
                    _ => s.push('\\'),
                },
                Some(c) => s.push(c),
            }
        }
        if s.is_empty() {
            return fail("empty phrase", open);
        }
        self.end_of_term("phrase")?;
        Ok(s)
    }

    /// `/.../` with `\/` resolved to `/`; other escapes kept verbatim.
    fn regex(&mut self) -> Result<String, SearchError> {
        let open = self.pos + 1;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return fail("unterminated regex", open),
                Some('/') => break,
                Some('\\') => match self.bump() {
                    Some('/') => s.push('/'),
                    Some(c) => s.extend(['\\', c]),
                    None => return fail("unterminated regex", open),
                },
                Some(c) => s.push(c),
            }
        }
        if s.is_empty() {
            return fail("empty regex", open);
        }
        self.end_of_term("regex")?;
        Ok(s)
    }

    /// A closing `"` or `/` must be followed by whitespace, `)` or the end.
    fn end_of_term(&self, what: &str) -> Result<(), SearchError> {
        match self.peek() {
            Some(c) if !c.is_whitespace() && c != ')' => {
                fail(format!("unexpected '{c}' after {what}"), self.pos + 1)
            }
            _ => Ok(()),
        }
    }
}

struct Parser {
    toks: Peekable<IntoIter<Token>>,
    /// Column just past the input, for errors at the end.
    end: usize,
}

impl Parser {
    fn peek_tok(&mut self) -> Option<&Tok> {
        self.toks.peek().map(|t| &t.tok)
    }

    fn starts_term(&mut self) -> bool {
        matches!(
            self.peek_tok(),
            Some(Tok::Term(_) | Tok::LParen | Tok::Not | Tok::Minus)
        )
    }

    /// After operator `sym` at column `col`, a term must follow.
    fn need_term(&mut self, sym: &str, col: usize) -> Result<(), SearchError> {
        if self.starts_term() {
            Ok(())
        } else {
            fail(format!("expected a term after '{sym}'"), col)
        }
    }

    /// or := and ("OR" and)*
    fn or(&mut self) -> Result<Query, SearchError> {
        let mut items = vec![self.and()?];
        while matches!(self.peek_tok(), Some(Tok::Or)) {
            let col = self.toks.next().map_or(self.end, |t| t.col);
            self.need_term("OR", col)?;
            items.push(self.and()?);
        }
        Ok(combine(items, false))
    }

    /// and := unary ("AND"? unary)*
    fn and(&mut self) -> Result<Query, SearchError> {
        let mut items = vec![self.unary()?];
        loop {
            if matches!(self.peek_tok(), Some(Tok::And)) {
                let col = self.toks.next().map_or(self.end, |t| t.col);
                self.need_term("AND", col)?;
            } else if !self.starts_term() {
                break;
            }
            items.push(self.unary()?);
        }
        Ok(combine(items, true))
    }

    /// unary := ("NOT" | "-") unary | "(" or ")" | term
    fn unary(&mut self) -> Result<Query, SearchError> {
        let Some(Token { tok, col }) = self.toks.next() else {
            return fail("expected a term", self.end);
        };
        match tok {
            Tok::Term(q) => Ok(q),
            Tok::Not | Tok::Minus => {
                self.need_term(if matches!(tok, Tok::Not) { "NOT" } else { "-" }, col)?;
                Ok(Query::Not(Box::new(self.unary()?)))
            }
            Tok::LParen => {
                match self.peek_tok() {
                    None => return fail("missing ')' for '('", col),
                    Some(Tok::RParen) => return fail("empty parentheses", col),
                    _ => {}
                }
                let inner = self.or()?;
                match self.toks.next() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => Ok(inner),
                    _ => fail("missing ')' for '('", col),
                }
            }
            Tok::RParen => fail("unexpected ')'", col),
            Tok::And => fail("unexpected 'AND'", col),
            Tok::Or => fail("unexpected 'OR'", col),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(field: Field, value: Value) -> Query {
        Query::Match { field, value }
    }

    fn w(s: &str) -> Query {
        m(Field::Message, Value::Word(s.into()))
    }

    fn msg(value: Value) -> Query {
        m(Field::Message, value)
    }

    fn not(q: Query) -> Query {
        Query::Not(Box::new(q))
    }

    fn and<const N: usize>(qs: [Query; N]) -> Query {
        Query::And(qs.into())
    }

    fn or<const N: usize>(qs: [Query; N]) -> Query {
        Query::Or(qs.into())
    }

    fn attr(key: &str) -> Field {
        Field::Attribute(key.into())
    }

    /// Asserts that each input parses to the expected query.
    fn check<const N: usize>(cases: [(&str, Query); N]) {
        for (input, expected) in cases {
            match parse(input) {
                Ok(q) => assert_eq!(q, expected, "input {input:?}"),
                Err(e) => panic!("{input:?}: {e}"),
            }
        }
    }

    fn err(input: &str) -> String {
        match parse(input) {
            Ok(q) => panic!("{input:?} parsed as {q:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_input_and_star() {
        check([
            ("", Query::All),
            ("  \t ", Query::All),
            ("*", Query::All),
            ("* error", w("error")),
            ("* OR error", Query::All),
            ("-*", not(Query::All)),
        ]);
    }

    #[test]
    fn implicit_and() {
        check([
            ("a b  c", and([w("a"), w("b"), w("c")])),
            ("a AND b", and([w("a"), w("b")])),
        ]);
    }

    #[test]
    fn precedence_not_and_or() {
        check([
            ("a b OR c", or([and([w("a"), w("b")]), w("c")])),
            ("a OR b c", or([w("a"), and([w("b"), w("c")])])),
            ("a OR b AND c", or([w("a"), and([w("b"), w("c")])])),
            ("NOT a b", and([not(w("a")), w("b")])),
            ("NOT a OR b", or([not(w("a")), w("b")])),
            ("NOT NOT a", not(not(w("a")))),
        ]);
    }

    #[test]
    fn lowercase_keywords_are_words() {
        let words = ["a", "and", "b", "or", "not"].map(w);
        check([
            ("a and b or not", Query::And(words.into())),
            ("\"AND\"", msg(Value::Phrase("AND".into()))),
        ]);
    }

    #[test]
    fn parentheses_and_flattening() {
        check([
            ("a AND (b AND c)", and([w("a"), w("b"), w("c")])),
            ("(a OR b) OR c", or([w("a"), w("b"), w("c")])),
            ("(a OR b) c", and([or([w("a"), w("b")]), w("c")])),
            ("((a))", w("a")),
            ("a(b)", and([w("a"), w("b")])),
        ]);
    }

    #[test]
    fn minus_negation_vs_hyphenated_words() {
        check([
            (
                "-debug payment-service",
                and([not(w("debug")), w("payment-service")]),
            ),
            ("a-b-c", w("a-b-c")),
            ("x-", w("x-")),
            (
                "-level:DEBUG",
                not(m(Field::Level, Value::Word("DEBUG".into()))),
            ),
            ("-\"a b\"", not(msg(Value::Phrase("a b".into())))),
            ("-(a OR b)", not(or([w("a"), w("b")]))),
        ]);
    }

    #[test]
    fn every_field_case_insensitive() {
        use Field::*;
        let names = [
            "message", "level", "service", "host", "trace_id", "span_id", "stream",
        ];
        for (name, field) in names
            .into_iter()
            .zip([Message, Level, Service, Host, TraceId, SpanId, Stream])
        {
            assert_eq!(field.name(), name);
            let word = m(field, Value::Word("v-1".into()));
            check([
                (&format!("{name}:v-1"), word.clone()),
                (&format!("{}:v-1", name.to_uppercase()), word),
            ]);
        }
        let w200 = || Value::Word("200".into());
        check([
            ("attributes.http.status:200", m(attr("http.status"), w200())),
            ("Attributes.Http-Status:200", m(attr("Http-Status"), w200())),
            (
                "host:10.0.0.1:8080",
                m(Host, Value::Word("10.0.0.1:8080".into())),
            ),
        ]);
        assert_eq!(attr("http.status").name(), "attributes.http.status");
    }

    #[test]
    fn unknown_field_is_an_error() {
        let list =
            "(fields: message, level, service, host, trace_id, span_id, stream, attributes.<key>)";
        assert_eq!(
            err("a foo:bar"),
            format!("unknown field 'foo' {list} at column 3")
        );
        assert_eq!(
            err("-my.field:x"),
            format!("unknown field 'my.field' {list} at column 2")
        );
        assert_eq!(
            err("attributes:x"),
            format!("unknown field 'attributes' {list} at column 1")
        );
    }

    #[test]
    fn non_identifier_heads_are_words() {
        check(["12:30:01", "http://x.com/a", "héllo:x", ":x"].map(|s| (s, w(s))));
    }

    #[test]
    fn phrases_with_escapes() {
        let phrase = |s: &str| msg(Value::Phrase(s.into()));
        check([
            (r#""say \"hi\" \\ now""#, phrase(r#"say "hi" \ now"#)),
            (r#""a\nb""#, phrase(r"a\nb")),
            (
                r#"service:"a (b)""#,
                m(Field::Service, Value::Phrase("a (b)".into())),
            ),
            (r#"("x") y"#, and([phrase("x"), w("y")])),
        ]);
    }

    #[test]
    fn prefix_wildcard_exists() {
        let wild = |s: &str| msg(Value::Wildcard(s.into()));
        check([
            ("time*", msg(Value::Prefix("time".into()))),
            ("ti*ut", wild("ti*ut")),
            ("*out", wild("*out")),
            ("a?c*", wild("a?c*")),
            ("**", wild("**")),
            (
                "service:pay*",
                m(Field::Service, Value::Prefix("pay".into())),
            ),
            ("trace_id:*", m(Field::TraceId, Value::Exists)),
            ("(attributes.user:*)", m(attr("user"), Value::Exists)),
        ]);
    }

    #[test]
    fn regex_values() {
        let re = |s: &str| msg(Value::Regex(s.into()));
        check([
            (r"/a\/b\d+/", re(r"a/b\d+")),
            ("/a b (c)/", re("a b (c)")),
            (r"/a\\/", re(r"a\\")),
            (
                r"host:/web-\d+/",
                m(Field::Host, Value::Regex(r"web-\d+".into())),
            ),
            ("(/x/)", re("x")),
        ]);
    }

    #[test]
    fn comparisons() {
        use CompareOp::*;
        let cmp = |f: Field, op: CompareOp, s: &str| m(f, Value::Compare(op, s.into()));
        check([
            ("level:>=WARN", cmp(Field::Level, Ge, "WARN")),
            (
                "attributes.duration_ms:>100",
                cmp(attr("duration_ms"), Gt, "100"),
            ),
            (
                "attributes.duration_ms:<5",
                cmp(attr("duration_ms"), Lt, "5"),
            ),
            ("host:<=x", cmp(Field::Host, Le, "x")),
            (r#"host:>"a b""#, cmp(Field::Host, Gt, "a b")),
        ]);
    }

    #[test]
    fn error_messages_and_columns() {
        let cases = [
            ("level:ERROR a) b", "unexpected ')' at column 14"),
            ("héllo )", "unexpected ')' at column 7"),
            ("a (b OR c", "missing ')' for '(' at column 3"),
            ("a (", "missing ')' for '(' at column 3"),
            ("a AND b OR", "expected a term after 'OR' at column 9"),
            ("a OR OR b", "expected a term after 'OR' at column 3"),
            ("a AND )", "expected a term after 'AND' at column 3"),
            ("NOT", "expected a term after 'NOT' at column 1"),
            ("a - b", "expected a term after '-' at column 3"),
            ("日本 -", "expected a term after '-' at column 4"),
            ("(a -)", "expected a term after '-' at column 4"),
            ("OR a", "unexpected 'OR' at column 1"),
            ("a (AND b)", "unexpected 'AND' at column 4"),
            ("()", "empty parentheses at column 1"),
            ("héllo \"abc", "unterminated quote at column 7"),
            ("\"\"", "empty phrase at column 1"),
            ("x /ab", "unterminated regex at column 3"),
            (r"/ab\/", "unterminated regex at column 1"),
            ("//", "empty regex at column 1"),
            ("/var/log", "unexpected 'l' after regex at column 6"),
            ("\"a\"b", "unexpected 'b' after phrase at column 4"),
            ("level:", "missing value after 'level:' at column 7"),
            ("Level: x", "missing value after 'Level:' at column 7"),
            ("stream:)", "missing value after 'stream:' at column 8"),
            (
                "attributes.d:>= 5",
                "missing value after 'attributes.d:>=' at column 16",
            ),
            (
                "attributes.:x",
                "missing key after 'attributes.' at column 1",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(err(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn error_type() {
        let expected = SearchError {
            message: "unexpected ')'".into(),
            column: 1,
        };
        assert_eq!(parse(")"), Err(expected.clone()));
        let boxed: Box<dyn std::error::Error> = Box::new(expected);
        assert_eq!(boxed.to_string(), "unexpected ')' at column 1");
    }

    #[test]
    fn never_panics_on_short_inputs() {
        let alphabet: Vec<char> = "a-:( )\"/\\*>é".chars().collect();
        let n = alphabet.len();
        for mut code in 0..n.pow(4) {
            let mut input = String::new();
            while code > 0 {
                input.push(alphabet[code % n]);
                code /= n;
            }
            if let Err(e) = parse(&input) {
                assert!(
                    e.column >= 1 && e.column <= input.chars().count() + 1,
                    "{input:?}: {e}"
                );
            }
        }
    }
}
