# Benchmark: synthetic corpus (bench-data/, git-ignored, reused) against the bundled evals.
#   make bench [BENCH_ARGS="--quick"]   # or --size-mb N --files N --workers 1,2 --no-server
BENCH_ARGS ?=

bench:
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)
