//! The tokenizer (version 1) that turns message text into index terms, shared by the index
//! builder and every query-side look-up so both always agree. Specified in docs/format.md.

/// Tokenizer version recorded in every segment; a reader refuses segments with another one.
pub const TOKENIZER_VERSION: u16 = 1;

/// Tokens longer than this (after lower-casing) are indexed as their first `MAX_TOKEN_BYTES`
/// bytes, cut at a character boundary. A search for a long token looks up the same prefix, so it
/// stays searchable; the scan then confirms the full token.
pub const MAX_TOKEN_BYTES: usize = 64;

/// Calls `emit` with each lower-cased token of `text`, in order, with duplicates.
///
/// A token is a maximal run of characters for which `char::is_alphanumeric` is true; everything
/// else separates tokens. Lower-casing is `char::to_lowercase`. Tokens are cut to
/// [`MAX_TOKEN_BYTES`] as described there. `buf` is scratch space reused between calls.
pub fn for_each_token(text: &str, buf: &mut Vec<u8>, mut emit: impl FnMut(&[u8])) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            if !b.is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            // ASCII fast path: the run stays ASCII until a non-ASCII byte appears.
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            if i < bytes.len() && bytes[i] >= 0x80 && starts_alphanumeric(&text[i..]) {
                i = token_slow(text, start, buf, &mut emit);
                continue;
            }
            buf.clear();
            buf.extend(bytes[start..i].iter().map(u8::to_ascii_lowercase));
            emit(cut(buf));
        } else if starts_alphanumeric(&text[i..]) {
            i = token_slow(text, i, buf, &mut emit);
        } else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
}

fn starts_alphanumeric(rest: &str) -> bool {
    rest.chars().next().is_some_and(char::is_alphanumeric)
}

/// Tokenizes the run starting at `start` character by character; returns the index after it.
fn token_slow(text: &str, start: usize, buf: &mut Vec<u8>, emit: &mut impl FnMut(&[u8])) -> usize {
    buf.clear();
    let mut end = start;
    for c in text[start..].chars() {
        if !c.is_alphanumeric() {
            break;
        }
        end += c.len_utf8();
        let mut tmp = [0u8; 4];
        for lower in c.to_lowercase() {
            buf.extend_from_slice(lower.encode_utf8(&mut tmp).as_bytes());
        }
    }
    emit(cut(buf));
    end
}

/// Cuts a lower-cased token to at most [`MAX_TOKEN_BYTES`], at a UTF-8 character boundary.
pub fn cut(token: &[u8]) -> &[u8] {
    if token.len() <= MAX_TOKEN_BYTES {
        return token;
    }
    let mut end = MAX_TOKEN_BYTES;
    while end > 0 && (token[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    &token[..end]
}

/// The tokens of `text` as owned strings (for queries and tests).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for_each_token(text, &mut buf, |t| {
        out.push(String::from_utf8_lossy(t).into_owned())
    });
    out
}

/// Keyword values are cut at [`MAX_KEYWORD_BYTES`] like tokens, so huge attribute values
/// stay searchable through their prefix without bloating the dictionary.
pub const MAX_KEYWORD_BYTES: usize = 256;

/// Lower-cases a keyword value the way the index stores it, cut at [`MAX_KEYWORD_BYTES`].
pub fn normalize_keyword(value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    push_normalized_keyword(&mut out, value);
    out
}

/// Appends the normalised form of a keyword value to `out` (see [`normalize_keyword`]).
pub fn push_normalized_keyword(out: &mut Vec<u8>, value: &str) {
    let start = out.len();
    if value.is_ascii() {
        let take = value.len().min(MAX_KEYWORD_BYTES);
        out.extend(value.as_bytes()[..take].iter().map(u8::to_ascii_lowercase));
        return;
    }
    // Character by character, like tokens (`str::to_lowercase` treats a final sigma differently).
    let mut tmp = [0u8; 4];
    for lower in value.chars().flat_map(char::to_lowercase) {
        let encoded = lower.encode_utf8(&mut tmp).as_bytes();
        if out.len() - start + encoded.len() > MAX_KEYWORD_BYTES {
            break;
        }
        out.extend_from_slice(encoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_and_lowercases() {
        assert_eq!(
            tokens("ERROR conn=10.0.0.1:5432 user_id=U-42 took 15ms"),
            [
                "error", "conn", "10", "0", "0", "1", "5432", "user", "id", "u", "42", "took",
                "15ms"
            ]
        );
        assert_eq!(
            tokens("Größe ÄRGER naïve—café"),
            ["größe", "ärger", "naïve", "café"]
        );
        assert_eq!(tokens("  ...  "), Vec::<String>::new());
        assert_eq!(tokens("日本語 テキスト"), ["日本語", "テキスト"]);
    }

    #[test]
    fn long_tokens_are_cut_not_dropped() {
        let long = "A".repeat(100);
        assert_eq!(tokens(&long), ["a".repeat(MAX_TOKEN_BYTES)]);
        let multibyte = "é".repeat(40); // 80 bytes
        let t = &tokens(&multibyte)[0];
        assert!(t.len() <= MAX_TOKEN_BYTES && t.chars().all(|c| c == 'é'));
    }

    proptest! {
        #[test]
        fn ascii_fast_path_matches_char_definition(text in "\\PC{0,60}") {
            let expected: Vec<String> = text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty())
                .map(|t| {
                    let lower: String = t.chars().flat_map(char::to_lowercase).collect();
                    String::from_utf8_lossy(cut(lower.as_bytes())).into_owned()
                })
                .collect();
            prop_assert_eq!(tokens(&text), expected);
        }
    }
}
