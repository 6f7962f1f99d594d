# Benchmark: decon vs the upstream binary side by side (bench-data/, git-ignored, reused).
#   make bench [BENCH_ARGS="--quick"]   # or --repeats N --workers 1,2 --corpora eval-like --no-server
BENCH_ARGS ?=

bench:
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)
