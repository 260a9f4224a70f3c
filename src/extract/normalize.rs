//! The text normalisation the dictionary and the matcher share: a name's or a text's key is its
//! letters and digits, NFKC-normalized and lowercased, separators dropped. [`KEY_BYTE`] is the
//! same reduction for ASCII bytes, so the matcher's ASCII fast path and [`push_normalized`] agree.

use unicode_normalization::UnicodeNormalization;

/// Appends the normalized (NFKC, lowercase, Latin diacritics dropped) letters and digits of
/// one character: `É` gives `e`, `ﬁ` gives `fi`. Only Latin letters lose their marks (Japanese
/// voiced kana, Hangul syllables and other scripts keep theirs).
pub(super) fn push_normalized(c: char, out: &mut String) {
    push_key(c, out, true);
}

/// [`push_normalized`] keeping diacritics (`é` stays `é`): the key of a product whose
/// accents must match exactly.
pub(super) fn push_normalized_exact(c: char, out: &mut String) {
    push_key(c, out, false);
}

fn push_key(c: char, out: &mut String, fold: bool) {
    if c.is_ascii() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        }
        return;
    }
    for n in std::iter::once(c).nfkc() {
        for l in n.to_lowercase() {
            if fold && is_accented_latin(l) {
                unicode_normalization::char::decompose_canonical(l, |d| {
                    if d.is_alphanumeric() {
                        out.push(d);
                    }
                });
            } else if l.is_alphanumeric() {
                out.push(l);
            }
        }
    }
}

/// Latin letters that may carry diacritics (Latin-1 Supplement, Latin Extended-A and -B,
/// Latin Extended Additional).
fn is_accented_latin(c: char) -> bool {
    matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}')
}

/// Scripts written without spaces between words: Han, Hiragana, Katakana, Hangul, Thai, Lao,
/// Khmer, Myanmar, Bopomofo and Yi. A change between one of them and any other script is a
/// word boundary, and a name written in one of them needs no boundary at all.
pub(super) fn no_space_script(c: char) -> bool {
    matches!(c,
        '\u{0E00}'..='\u{0EFF}' // Thai, Lao
        | '\u{1000}'..='\u{109F}' // Myanmar
        | '\u{1100}'..='\u{11FF}' // Hangul Jamo
        | '\u{1780}'..='\u{17FF}' // Khmer
        | '\u{3005}'..='\u{3007}' // 々 〆 〇
        | '\u{3040}'..='\u{30FF}' // Hiragana, Katakana
        | '\u{3100}'..='\u{312F}' // Bopomofo
        | '\u{3130}'..='\u{318F}' // Hangul Compatibility Jamo
        | '\u{31F0}'..='\u{31FF}' // Katakana Phonetic Extensions
        | '\u{3400}'..='\u{4DBF}' // CJK Extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK Unified Ideographs
        | '\u{A000}'..='\u{A4CF}' // Yi
        | '\u{A960}'..='\u{A97F}' // Hangul Jamo Extended-A
        | '\u{AC00}'..='\u{D7FF}' // Hangul Syllables, Jamo Extended-B
        | '\u{F900}'..='\u{FAFF}' // CJK Compatibility Ideographs
        | '\u{FF66}'..='\u{FFDC}' // halfwidth Katakana and Hangul
        | '\u{20000}'..='\u{3134F}' // CJK Extensions B–G
    )
}

/// For each ASCII byte: its key byte (lowercased letter or digit), or 0 when it is not one.
pub(super) const KEY_BYTE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            t[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    t
};

pub(super) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// A combining mark that is not a letter of its own (the acute of a decomposed `é`): part of
/// the letter before it, never a separator. (Indic vowel signs are letters and stay.)
pub(super) fn is_mark(c: char) -> bool {
    !c.is_ascii() && !c.is_alphanumeric() && unicode_normalization::char::is_combining_mark(c)
}

/// The matching key of a name: its normalized letters and digits, separators dropped.
pub fn normalize_key(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if is_word_char(c) {
            push_normalized(c, &mut out);
        }
    }
    out
}

/// [`normalize_key`] keeping diacritics (composed first, so a decomposed `é` is `é`).
pub fn normalize_key_exact(name: &str) -> String {
    let mut out = String::new();
    for c in name.nfc() {
        if is_word_char(c) {
            push_normalized_exact(c, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_table_is_the_same_reduction() {
        for b in 0u8..128 {
            let mut s = String::new();
            push_normalized(char::from(b), &mut s);
            let k = KEY_BYTE[usize::from(b)];
            assert_eq!(
                s,
                if k == 0 {
                    String::new()
                } else {
                    char::from(k).to_string()
                },
                "{b}"
            );
        }
        assert_eq!(normalize_key("Acme-Router 5G"), "acmerouter5g");
    }

    #[test]
    fn latin_accents_fold_and_other_marks_stay() {
        assert_eq!(normalize_key("Réseau-Plus"), "reseauplus");
        assert_eq!(normalize_key("RÉSEAU PLUS"), "reseauplus");
        assert_eq!(normalize_key("Ñandú Çava"), "nanducava");
        assert_eq!(normalize_key_exact("Réseau"), "réseau");
        // Voiced kana and Hangul syllables are letters of their own, not accented ones.
        assert_eq!(normalize_key("ガ"), "ガ");
        assert_ne!(normalize_key("ガ"), normalize_key("カ"));
        assert_eq!(normalize_key("한국"), "한국");
        assert!(no_space_script('の') && no_space_script('ア') && no_space_script('ข'));
        assert!(no_space_script('한') && no_space_script('漢'));
        assert!(!no_space_script('a') && !no_space_script('é') && !no_space_script('7'));
    }
}
