//! The text normalisation the dictionary and the matcher share: a name's or a text's key is its
//! letters and digits, NFKC-normalized and lowercased, separators dropped. [`KEY_BYTE`] is the
//! same reduction for ASCII bytes, so the matcher's ASCII fast path and [`push_normalized`] agree.

use unicode_normalization::UnicodeNormalization;

/// Appends the normalized (NFKC, lowercase) letters and digits of one character.
pub(super) fn push_normalized(c: char, out: &mut String) {
    if c.is_ascii() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        }
        return;
    }
    for n in std::iter::once(c).nfkc() {
        for l in n.to_lowercase() {
            if l.is_alphanumeric() {
                out.push(l);
            }
        }
    }
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
}
