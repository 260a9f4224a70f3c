#!/usr/bin/env bash
# Measures the original tutorial's NER-based product extractor (bench/baseline.py) on convlake's
# labeled evaluation corpus: precision/recall/F1 per style and throughput in MB of text per second.
#
#   bench/run_baseline.sh [--corpus FILE.jsonl --dictionary FILE.toml] [--json OUT.json] [...]
#
# Installs its Python dependencies (bench/requirements.txt, all from PyPI) into target/bench-venv
# once; later runs reuse it (a stamp file records the requirements it was built from).
# Without --corpus it asks an already-built convlake binary (target/release or target/debug; this
# script never runs cargo) to export the corpus and dictionary into target/bench/; if no binary
# can, it falls back to the small hand-written sample in bench/sample_corpus.jsonl.
# Every other argument goes to bench/baseline.py (`--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="$PWD/target/bench-venv"
REQ="$PWD/bench/requirements.txt"
STAMP="$VENV/.bench-requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "run_baseline: installing bench/requirements.txt into $VENV" >&2
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  echo "$want" > "$STAMP"
fi

have_corpus=0
for a in "$@"; do
  case "$a" in --corpus|--corpus=*) have_corpus=1 ;; esac
done

args=()
if [ "$have_corpus" = 0 ]; then
  out="$PWD/target/bench"
  mkdir -p "$out"
  exported=0
  for bin in target/release/convlake target/debug/convlake; do
    [ -x "$bin" ] || continue
    if "$bin" bench extract --export-corpus "$out/corpus.jsonl" --export-dictionary "$out/dictionary.toml" \
         >"$out/export.log" 2>&1 && [ -s "$out/corpus.jsonl" ] && [ -s "$out/dictionary.toml" ]; then
      echo "run_baseline: corpus exported by $bin into $out/" >&2
      exported=1
      break
    fi
  done
  if [ "$exported" = 1 ]; then
    args=(--corpus "$out/corpus.jsonl" --dictionary "$out/dictionary.toml")
  else
    echo "run_baseline: no convlake binary could export the corpus (see $out/export.log);" \
         "using the hand-written sample bench/sample_corpus.jsonl" >&2
    args=(--corpus bench/sample_corpus.jsonl --dictionary bench/sample_dictionary.toml)
  fi
fi

# One thread for the numeric libraries: the figure is throughput per core.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
exec "$VENV/bin/python" bench/baseline.py "${args[@]}" "$@"
