//! Privacy: personal data is masked before convlake writes text anywhere (the lake, logs,
//! reports). [`mask::Masker`] holds the rules, built-in detectors for card numbers, IBANs,
//! e-mail addresses, US social security numbers and phone numbers plus the user's own patterns
//! from a masks file, and replaces what they find with tags in Genesys Cloud's redaction style.

pub mod erase;
pub mod mask;
pub mod proof;
pub mod retention;
