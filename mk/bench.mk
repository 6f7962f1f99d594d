# Benchmark: decon vs the upstream binary side by side (bench-data/, git-ignored, reused).
#   make bench [BENCH_ARGS="--quick"]   # or --repeats N --workers 1,2 --corpora eval-like --no-server
#   (it also times the first corpus as JSONL, .jsonl.zst and Parquet, 1 worker; --no-formats skips that)
# Detection quality (timed per run, not a speed claim): recall on labelled leaks, false positives on clean text, for
# SIMPLE, --recall and a word 13-gram baseline, on ../shared/bench's labelled set (bench-data/recall/results.md).
#   make bench-recall [BENCH_RECALL_ARGS="--quick"]   # or --per-kind 100 --workers 1 --json FILE
BENCH_ARGS ?=
BENCH_RECALL_ARGS ?=

.PHONY: bench bench-recall

bench:
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

bench-recall:
	$(BIN)/python scripts/bench_recall.py $(BENCH_RECALL_ARGS)

# Reworded leaks (--semantic): the recall set plus rule-reworded GSM8K/MMLU questions and templated variants
# (same wording, other numbers); recall per kind, false positives, the threshold curve (docs/img/semantic-curve.png)
# and the prose-like speed check against SIMPLE (bench-data/semantic/results.md).
#   make bench-semantic [BENCH_SEMANTIC_ARGS="--quick --no-speed"]
BENCH_SEMANTIC_ARGS ?=
.PHONY: bench-semantic
bench-semantic:
	$(BIN)/python scripts/bench_semantic.py $(BENCH_SEMANTIC_ARGS)
