#[test]
fn extractor_agrees() {
    use crate::extract::dictionary::Dictionary;
    use crate::extract::matcher::{Matcher, Scratch};
    let dict = Dictionary::embedded();
    let extra = "[[product]]\nname = \"Account Helper\"\naliases = [\"Order Box\"]\n[[product]]\nname = \"Card\"\n[[product]]\nname = \"X1 Pro\"\n";
    let toml = std::fs::read_to_string("data/products.toml").unwrap() + extra;
    for dict in [dict, Dictionary::parse(&toml, "x").unwrap()] {
        let products = dict.products.iter().map(|p| super::SimProduct { name: p.name.clone(), aliases: p.aliases.clone() }).collect();
        let mut cfg = super::SimConfig::new(products);
        cfg.conversations = 3000;
        let m = Matcher::new(&dict);
        let gen = super::Generator::new(&cfg);
        let (mut s, mut out) = (Scratch::default(), Vec::new());
        let mut total = 0;
        for i in 0..gen.len() {
            let c = gen.conversation(i);
            let mut found = std::collections::BTreeMap::<String, usize>::new();
            for it in &c.interactions {
                m.find(&it.transcript, &mut s, &mut out);
                for f in &out { *found.entry(m.products()[f.product as usize].clone()).or_default() += 1; total += 1; }
            }
            let want: std::collections::BTreeMap<String, usize> = c.mentions.iter().cloned().collect();
            assert_eq!(found, want, "{i} {:#?}", c.interactions);
        }
        eprintln!("total {total}");
    }
}
