//! The product dictionary (`data/products.toml`): canonical names and aliases, validated, with a
//! version that is the blake3 of its normalized content (order and comments do not matter).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::normalize::normalize_key;

/// The dictionary shipped with convlake, used when no file is given and `data/products.toml`
/// is not in the working directory.
pub const EMBEDDED: &str = include_str!("../../data/products.toml");

/// One product: its canonical name, extra surface forms and how strictly they match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Product {
    pub name: String,
    pub aliases: Vec<String>,
    /// How speech recognition may hear the name (`sounds_like`): matched as aliases, and sent
    /// to Genesys as dictionary feedback by `dictionary push`.
    pub sounds_like: Vec<String>,
    /// `case_sensitive = true`: a form with capitals matches only where each of its words
    /// starts with the capital (an all-lowercase alias still matches in any case).
    pub case_sensitive: bool,
    /// `fuzzy = true`: each word of six or more letters may differ by one edit.
    pub fuzzy: bool,
    /// `accents = "exact"`: diacritics must match as written (by default they are ignored).
    pub accents: Accents,
}

/// How a product's forms treat diacritics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accents {
    /// `reseau plus` matches `Réseau Plus` (the default).
    #[default]
    Ignore,
    /// Only the accents as written match.
    Exact,
}

impl Product {
    /// The name, the aliases and the sounds-like spellings: every form that matches.
    pub fn forms(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.name)
            .chain(self.aliases.iter())
            .chain(self.sounds_like.iter())
    }
}

/// A validated dictionary and its version.
#[derive(Debug, Clone)]
pub struct Dictionary {
    /// Products sorted by canonical name.
    pub products: Vec<Product>,
    /// blake3 of the normalized content, 16 hex digits: the `dict=` partition name.
    pub version: String,
    /// The version the same content had before the rules of issue 21 (`convlake-dictionary-v1`;
    /// `None` when it uses a key that did not exist then), so a copy in an older lake is known.
    pub v1_version: Option<String>,
    /// Where it came from (a path, or "embedded").
    pub origin: String,
}

/// What is wrong with a dictionary, with file and line.
#[derive(Debug, thiserror::Error)]
pub enum DictionaryError {
    #[error("cannot read the dictionary {path}: {cause}. Check the path given with --dictionary (or CONVLAKE_DICTIONARY), or create data/products.toml")]
    Read {
        path: String,
        // In the message and not named `source`: as the error's source, the chain would print
        // it twice.
        cause: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}:{line}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        message: String,
    },
    #[error("{origin}: the dictionary has no [[product]] entries; add at least one")]
    Empty { origin: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    product: Vec<RawProduct>,
    /// `[[mask]]` tables: the fetch's own masking patterns (`fetch --mask pii --masks FILE`,
    /// read by [`crate::privacy::mask::Masker::user_patterns_in`]); not part of the dictionary
    /// or its version.
    #[serde(default)]
    #[allow(dead_code)]
    mask: Vec<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    name: Spanned<String>,
    #[serde(default)]
    aliases: Vec<Spanned<String>>,
    #[serde(default)]
    sounds_like: Vec<Spanned<String>>,
    #[serde(default)]
    case_sensitive: bool,
    #[serde(default)]
    fuzzy: bool,
    #[serde(default)]
    accents: Accents,
}

/// Line numbers by byte offset, in O(log n) each (a dictionary may hold thousands of forms).
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(text.match_indices('\n').map(|(i, _)| i).collect())
    }
    fn of(&self, byte: usize) -> usize {
        self.0.partition_point(|&nl| nl < byte) + 1
    }
}

/// One product as written in a normalized copy.
#[derive(serde::Serialize)]
struct CopyProduct<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    aliases: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    sounds_like: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    case_sensitive: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fuzzy: bool,
    #[serde(skip_serializing_if = "is_default_accents")]
    accents: Accents,
}

fn is_default_accents(a: &Accents) -> bool {
    *a == Accents::Ignore
}

#[derive(serde::Serialize)]
struct CopyFile<'a> {
    product: Vec<CopyProduct<'a>>,
}

impl Dictionary {
    /// The normalized content as TOML (products by name, aliases sorted, no comments): what
    /// the lake keeps in `dictionaries/<version>.toml`. Parsing it gives the same version.
    pub fn to_toml(&self) -> String {
        let file = CopyFile {
            product: self
                .products
                .iter()
                .map(|p| CopyProduct {
                    name: &p.name,
                    aliases: &p.aliases,
                    sounds_like: &p.sounds_like,
                    case_sensitive: p.case_sensitive,
                    fuzzy: p.fuzzy,
                    accents: p.accents,
                })
                .collect(),
        };
        let body = toml::to_string(&file).unwrap_or_else(|e| {
            // Only strings and arrays of strings: serialization cannot fail; keep a note
            // rather than a panic if a future field changes that.
            format!("# cannot serialize this dictionary: {e}\n")
        });
        format!(
            "# convlake dictionary {} (normalized copy; source: {})\n{body}",
            self.version, self.origin
        )
    }

    /// Loads and validates a dictionary file.
    pub fn load(path: &Path) -> Result<Dictionary, DictionaryError> {
        let text = std::fs::read_to_string(path).map_err(|cause| DictionaryError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        Dictionary::parse(&text, &path.display().to_string())
    }

    /// The embedded default dictionary.
    pub fn embedded() -> Dictionary {
        // The embedded file is checked by the `embedded_dictionary_is_valid` test.
        Dictionary::parse(EMBEDDED, "embedded data/products.toml")
            .unwrap_or_else(|e| panic!("the embedded dictionary is invalid: {e}"))
    }

    /// Parses and validates dictionary text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Dictionary, DictionaryError> {
        let lines = Lines::new(text);
        let raw: RawFile = toml::from_str(text).map_err(|e| match e.span() {
            // `file:3: invalid type: string "yes", expected a boolean`: the line, then what.
            Some(span) => {
                let line = lines.of(span.start);
                DictionaryError::Invalid {
                    origin: origin.to_string(),
                    line,
                    message: format!(
                        "{} (line {line}: {})",
                        e.message().trim().replace('\n', "; "),
                        text.lines().nth(line - 1).unwrap_or("").trim()
                    ),
                }
            }
            None => DictionaryError::Syntax {
                origin: origin.to_string(),
                message: e.to_string().trim().replace('\n', " "),
            },
        })?;
        if raw.product.is_empty() {
            return Err(DictionaryError::Empty {
                origin: origin.to_string(),
            });
        }
        let invalid = |span: std::ops::Range<usize>, message: String| DictionaryError::Invalid {
            origin: origin.to_string(),
            line: lines.of(span.start),
            message,
        };
        // normalized key → (canonical name, line) of the form that claimed it
        let mut keys: HashMap<String, (String, usize)> = HashMap::new();
        let mut products = Vec::new();
        for p in &raw.product {
            let name = p.name.get_ref().trim().to_string();
            if normalize_key(&name).is_empty() {
                return Err(invalid(
                    p.name.span(),
                    "a product name is empty (it needs at least one letter or digit)".into(),
                ));
            }
            let mut aliases: Vec<String> = Vec::new();
            let mut sounds_like: Vec<String> = Vec::new();
            let forms = std::iter::once(&p.name)
                .chain(p.aliases.iter())
                .chain(p.sounds_like.iter());
            for (i, form) in forms.enumerate() {
                let is_sound = i > p.aliases.len();
                let text_form = form.get_ref().trim();
                let key = normalize_key(text_form);
                if key.is_empty() {
                    return Err(invalid(
                        form.span(),
                        format!("an alias of {name:?} is empty"),
                    ));
                }
                let line = lines.of(form.span().start);
                if let Some((owner, first_line)) = keys.get(&key) {
                    if i == 0 {
                        return Err(invalid(
                            form.span(),
                            format!("duplicate product name {name:?}: it matches the same words as {owner:?} (line {first_line}); merge them or make one an alias"),
                        ));
                    }
                    if *owner == name {
                        // An alias equal to the name or another alias of the same product adds
                        // nothing (a sounds-like spelling is still kept, for `dictionary push`).
                        if is_sound && !sounds_like.iter().any(|s| s == text_form) {
                            sounds_like.push(text_form.to_string());
                        }
                        continue;
                    }
                    return Err(invalid(
                        form.span(),
                        format!(
                            "the alias {text_form:?} is already used by product {owner:?} (line {first_line}); a surface form can belong to one product only"
                        ),
                    ));
                }
                keys.insert(key, (name.clone(), line));
                if is_sound {
                    sounds_like.push(text_form.to_string());
                } else if i > 0 {
                    aliases.push(text_form.to_string());
                }
            }
            aliases.sort();
            sounds_like.sort();
            products.push(Product {
                name,
                aliases,
                sounds_like,
                case_sensitive: p.case_sensitive,
                fuzzy: p.fuzzy,
                accents: p.accents,
            });
        }
        products.sort_by(|a, b| a.name.cmp(&b.name));
        // v2: the matching rules of issue 21 (split words, scripts, accents, case, fuzzy) give
        // other mentions than v1's for the same file, so the same file has a new version.
        let mut canonical = String::from("convlake-dictionary-v2\n");
        for p in &products {
            canonical.push_str(&p.name);
            for a in &p.aliases {
                canonical.push_str("\ta:");
                canonical.push_str(a);
            }
            for a in &p.sounds_like {
                canonical.push_str("\ts:");
                canonical.push_str(a);
            }
            if p.case_sensitive {
                canonical.push_str("\tcase_sensitive");
            }
            if p.fuzzy {
                canonical.push_str("\tfuzzy");
            }
            if p.accents == Accents::Exact {
                canonical.push_str("\taccents=exact");
            }
            canonical.push('\n');
        }
        let version = blake3::hash(canonical.as_bytes()).to_hex()[..16].to_string();
        // The version a convlake before issue 21 gave the same file (names and aliases only):
        // the partition a lake of then holds its mentions in.
        let plain = products.iter().all(|p| {
            p.sounds_like.is_empty()
                && !p.case_sensitive
                && !p.fuzzy
                && p.accents == Accents::Ignore
        });
        let v1_version = plain.then(|| {
            let mut v1 = String::from("convlake-dictionary-v1\n");
            for p in &products {
                v1.push_str(&p.name);
                for a in &p.aliases {
                    v1.push('\t');
                    v1.push_str(a);
                }
                v1.push('\n');
            }
            blake3::hash(v1.as_bytes()).to_hex()[..16].to_string()
        });
        Ok(Dictionary {
            products,
            version,
            v1_version,
            origin: origin.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_dictionary_is_valid() {
        let d = Dictionary::parse(EMBEDDED, "embedded").unwrap();
        assert!(d.products.len() >= 4);
        assert_eq!(d.version.len(), 16);
    }

    #[test]
    fn order_and_comments_do_not_change_the_version() {
        let a =
            "[[product]]\nname = \"A One\"\naliases = [\"x\", \"y\"]\n[[product]]\nname = \"B\"\n";
        let b = "# comment\n[[product]]\nname = \"B\"\n\n[[product]]\nname = \"A One\" # hi\naliases = [\"y\", \"x\"]\n";
        assert_eq!(
            Dictionary::parse(a, "a").unwrap().version,
            Dictionary::parse(b, "b").unwrap().version
        );
        let c = "[[product]]\nname = \"A One\"\naliases = [\"x\"]\n[[product]]\nname = \"B\"\n";
        assert_ne!(
            Dictionary::parse(a, "a").unwrap().version,
            Dictionary::parse(c, "c").unwrap().version
        );
    }

    #[test]
    fn the_normalized_copy_has_the_same_version() {
        let text = "[[product]]\nname = \"Réseau \\\"Plus\\\"\"\naliases = [\"b x\", \"a'y\"]\n[[product]]\nname = \"Acme\" # c\n";
        let d = Dictionary::parse(text, "p.toml").unwrap();
        let copy = d.to_toml();
        let again = Dictionary::parse(&copy, "copy").unwrap();
        assert_eq!(again.version, d.version);
        assert_eq!(again.products, d.products);
        let e = Dictionary::embedded();
        assert_eq!(
            Dictionary::parse(&e.to_toml(), "copy").unwrap().version,
            e.version
        );
    }

    #[test]
    fn errors_name_the_line() {
        let dup = "[[product]]\nname = \"A\"\n[[product]]\nname = \"a\"\n";
        let e = Dictionary::parse(dup, "p.toml").unwrap_err().to_string();
        assert!(e.starts_with("p.toml:4:") && e.contains("duplicate"), "{e}");

        let shared = "[[product]]\nname = \"A\"\naliases=[\"zz\"]\n[[product]]\nname = \"B\"\naliases = [\"ZZ\"]\n";
        let e = Dictionary::parse(shared, "p.toml").unwrap_err().to_string();
        assert!(
            e.starts_with("p.toml:6:") && e.contains("already used by product \"A\""),
            "{e}"
        );

        let empty = "[[product]]\nname = \"  \"\n";
        let e = Dictionary::parse(empty, "p.toml").unwrap_err().to_string();
        assert!(e.starts_with("p.toml:2:") && e.contains("empty"), "{e}");

        let unknown = "[[product]]\nname = \"A\"\nalias = [\"b\"]\n";
        let e = Dictionary::parse(unknown, "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field `alias`") && e.contains("line 3"),
            "{e}"
        );

        assert!(Dictionary::parse("", "p.toml").is_err());
        assert!(Dictionary::parse("[[product]\n", "p.toml").is_err());
    }

    #[test]
    fn the_rule_keys_are_validated_with_the_line() {
        let ok = "[[product]]\nname = \"Edge\"\ncase_sensitive = true\nfuzzy = false\naccents = \"exact\"\nsounds_like = [\"edj\"]\n";
        let d = Dictionary::parse(ok, "p.toml").unwrap();
        let p = &d.products[0];
        assert!(p.case_sensitive && !p.fuzzy && p.accents == Accents::Exact);
        assert_eq!(p.sounds_like, ["edj"]);
        assert_eq!(p.forms().count(), 2);
        for (bad, line, what) in [
            ("[[product]]\nname = \"A\"\nfuzzy = \"yes\"\n", 3, "boolean"),
            (
                "[[product]]\nname = \"A\"\n\ncase_sensitive = 1\n",
                4,
                "boolean",
            ),
            (
                "[[product]]\nname = \"A\"\naccents = \"strict\"\n",
                3,
                "exact",
            ),
            (
                "[[product]]\nname = \"A\"\nsounds_like = \"a\"\n",
                3,
                "sequence",
            ),
            (
                "[[product]]\nname = \"A\"\nfuzy = true\n",
                3,
                "unknown field `fuzy`",
            ),
        ] {
            let e = Dictionary::parse(bad, "p.toml").unwrap_err().to_string();
            assert!(
                e.starts_with("p.toml") && e.contains(&format!("line {line}")) && e.contains(what),
                "{bad:?}: {e}"
            );
        }
        // A sounds-like spelling another product owns is refused like an alias.
        let shared =
            "[[product]]\nname = \"A\"\n[[product]]\nname = \"B\"\nsounds_like = [\"a\"]\n";
        let e = Dictionary::parse(shared, "p.toml").unwrap_err().to_string();
        assert!(
            e.starts_with("p.toml:5:") && e.contains("already used"),
            "{e}"
        );
    }

    #[test]
    fn the_version_before_issue_21_is_known() {
        // The embedded dictionary's version before the rules of issue 21, as lakes of then
        // name their partition (README of 2026-12-04 05:20 UTC).
        let e = Dictionary::embedded();
        assert_eq!(e.v1_version.as_deref(), Some("63b8938e6ca497bb"));
        assert_ne!(e.version, "63b8938e6ca497bb");
        let fuzzy = Dictionary::parse("[[product]]\nname = \"A\"\nfuzzy = true\n", "p").unwrap();
        assert_eq!(fuzzy.v1_version, None);
    }

    #[test]
    fn every_rule_key_changes_the_version_and_survives_the_copy() {
        let base = "[[product]]\nname = \"Quantum Headset\"\n";
        let v = |t: &str| Dictionary::parse(t, "p").unwrap().version;
        let mut seen = std::collections::HashSet::new();
        assert!(seen.insert(v(base)));
        for extra in [
            "fuzzy = true\n",
            "case_sensitive = true\n",
            "accents = \"exact\"\n",
            "sounds_like = [\"quantum head said\"]\n",
            "aliases = [\"quantum head said\"]\n",
        ] {
            let text = format!("{base}{extra}");
            assert!(seen.insert(v(&text)), "{extra} changes the version");
            let d = Dictionary::parse(&text, "p").unwrap();
            let again = Dictionary::parse(&d.to_toml(), "copy").unwrap();
            assert_eq!(again.products, d.products, "{extra}");
            assert_eq!(again.version, d.version, "{extra}");
        }
        // The defaults written out change nothing.
        assert_eq!(
            v(base),
            v(&format!(
                "{base}fuzzy = false\ncase_sensitive = false\naccents = \"ignore\"\n"
            ))
        );
    }
}
