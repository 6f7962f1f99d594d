#!/usr/bin/env python3
"""Side-by-side benchmark: `decon detect` against the upstream binary, same run, same inputs.

    make bench [BENCH_ARGS="--quick"]
    python scripts/bench.py [--upstream PATH] [--repeats 3] [--workers 1,2] [--quick]
                            [--corpora prose-like,eval-like,doc-prose] [--no-server] [--no-purify]
    python scripts/bench.py --profile eval-like      # cProfile dump of decon on one corpus, 1 worker

Corpora (generated once under bench-data/, reused while their parameters match):
  prose-like  English-like prose from the eval texts' word frequencies, ~1% edited eval items;
              checked against all bundled evals (fixtures/reference).
  eval-like   ../shared/bench/make_corpus.py, 20,000 docs, seed 7: Q&A text around injected items;
              checked against the 6-file reference subset it writes (--refs).
  doc-prose   the same generator with --bg-eval-files '' (vim/nodejs documentation sentences);
              checked against all bundled evals.

Detection time = median wall(corpus) - median wall(one-line corpus of the same kind), per tool and
worker count (decon --worker-threads N vs upstream --worker-threads N): start-up and index build
cancel out. decon always runs with a warm index cache (filled before timing). The ratio is upstream
time / decon time (> 1: decon is faster). Both tools' report records are compared as sets of
(line, eval_key, eval_instance_index). The tokenizer floor is decon's tokenizer alone (encode_batch
of the cleaned texts; and cleaning + encoding) in the same process layout, as a share of decon's
detection time. Also: cold index build, cache load and peak RSS against the targets, a --purify run
and `decon server` PSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_corpora import Corpus, make_corpus, prose_corpus, read_truth  # noqa: E402
from bench_tools import (  # noqa: E402
    MatchCheck,
    RunResult,
    compare_matches,
    decon_env,
    floor_worker,
    read_matches,
    run_decon,
    run_upstream,
    tokenizer_floor,
    upstream_version,
)

ROOT = Path(__file__).resolve().parent.parent
EVALS = ROOT / "fixtures" / "reference"
DATA = ROOT / "bench-data"
CORPORA = ("prose-like", "eval-like", "doc-prose")
TARGET_RATIO = 1.5
TARGET_COLD_S, TARGET_LOAD_S, TARGET_RSS_MB = 15.0, 1.0, 700.0


def shared_dir() -> Path:
    """../shared beside the project root (CI, main checkout); ../../shared for worktrees under wt/."""
    for cand in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        if cand.is_dir():
            return cand
    return ROOT.parent / "shared"


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", type=Path, default=shared_dir() / "oracle" / "decon",
                    help="the upstream decon binary [default: ../shared/oracle/decon]")
    ap.add_argument("--no-upstream", action="store_true", help="time decon alone (no ratios, no match check)")
    ap.add_argument("--make-corpus", type=Path, default=shared_dir() / "bench" / "make_corpus.py",
                    help="eval-like corpus generator [default: ../shared/bench/make_corpus.py]")
    ap.add_argument("--evals", type=Path, default=EVALS,
                    help="'all bundled evals' reference set [default: fixtures/reference]")
    ap.add_argument("--corpora", default=",".join(CORPORA), help=f"which corpora [default: {','.join(CORPORA)}]")
    ap.add_argument("--workers", default="1,2", help="worker counts (decon workers = upstream threads) [default: 1,2]")
    ap.add_argument("--repeats", type=int, default=None, help="runs per measurement, median taken [default: 3]")
    ap.add_argument("--quick", action="store_true", help="small corpora (4 MB / 2,000 docs) and 1 repeat")
    ap.add_argument("--size-mb", type=float, default=None, help="prose-like corpus size [default: 40; quick 4]")
    ap.add_argument("--files", type=int, default=1, help="prose-like corpus files [default: 1]")
    ap.add_argument("--docs", type=int, default=None, help="make_corpus.py documents [default: 20000; quick 2000]")
    ap.add_argument("--seed", type=int, default=7, help="make_corpus.py seed [default: 7]")
    ap.add_argument("--prose-seed", type=int, default=1234, help="prose-like generator seed [default: 1234]")
    ap.add_argument("--own-times", action="store_true",
                    help="use each tool's own 'Detection time' instead of wall(corpus) - wall(one-line corpus); "
                         "skips the one-line runs (about half the time; no CPU ratio)")
    ap.add_argument("--no-floor", action="store_true", help="skip the tokenizer floor")
    ap.add_argument("--no-index-check", action="store_true", help="skip cold index build / cache load")
    ap.add_argument("--no-purify", action="store_true", help="skip the --purify run")
    ap.add_argument("--no-server", action="store_true", help="skip the server memory check")
    ap.add_argument("--no-formats", action="store_true",
                    help="skip timing the first corpus as JSONL, .jsonl.zst and Parquet (needs pyarrow)")
    ap.add_argument("--profile", metavar="CORPUS", choices=CORPORA,
                    help="only write a cProfile dump of decon (1 worker, warm cache) on CORPUS and print its top")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON to this file")
    ap.add_argument("--from-json", type=Path, default=None, help="only re-print the table of a --json file")
    ap.add_argument("--data", type=Path, default=DATA, help="corpora and runs [default: bench-data/]")
    ap.add_argument("--floor-worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.size_mb = args.size_mb or (4.0 if args.quick else 40.0)
    args.docs = args.docs or (2000 if args.quick else 20000)
    args.worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    args.corpus_names = [c.strip() for c in args.corpora.split(",") if c.strip()]
    unknown = sorted(set(args.corpus_names) - set(CORPORA))
    if unknown:
        ap.error(f"unknown corpus {', '.join(unknown)} (choose from {', '.join(CORPORA)})")
    if args.repeats < 1 or not args.worker_counts or min(args.worker_counts) < 1:
        ap.error("--repeats and --workers must be positive")
    return args


def build_corpus(name: str, args: argparse.Namespace) -> Corpus:
    if name == "prose-like":
        return prose_corpus(args.data, size_mb=args.size_mb, files=args.files, seed=args.prose_seed,
                            evals=args.evals)
    return make_corpus(args.data, name=name, generator=args.make_corpus, evals=args.evals, docs=args.docs,
                       seed=args.seed, doc_prose=name == "doc-prose")


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------

@dataclass
class Cell:
    """One corpus at one worker count: every run's wall time, both tools."""

    corpus: str
    workers: int
    decon: list[float] = field(default_factory=list)
    decon_tiny: list[float] = field(default_factory=list)
    upstream: list[float] = field(default_factory=list)
    upstream_tiny: list[float] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # the same four series, CPU seconds
    own: dict[str, list[float]] = field(default_factory=dict)  # each tool's own "Detection time" (full corpus)
    decon_rss_mb: float = 0.0
    upstream_rss_mb: float = 0.0
    matches: MatchCheck | None = None
    floor: dict[str, float] | None = None
    tokens: int = 0

    @staticmethod
    def _detect(full: list[float], tiny: list[float]) -> float | None:
        return statistics.median(full) - statistics.median(tiny) if full and tiny else None

    def _tool_s(self, tool: str) -> float | None:
        tiny = getattr(self, f"{tool}_tiny")
        if not tiny and self.own.get(tool):  # --own-times: the tool's own "Detection time"
            return statistics.median(self.own[tool])
        return self._detect(getattr(self, tool), tiny)

    @property
    def decon_s(self) -> float | None:
        return self._tool_s("decon")

    @property
    def upstream_s(self) -> float | None:
        return self._tool_s("upstream")

    @property
    def ratio(self) -> float | None:
        d, u = self.decon_s, self.upstream_s
        return u / d if d and u is not None and d > 0 else None

    @property
    def own_ratio(self) -> float | None:
        """The ratio of the tools' own "Detection time" figures (medians), a cross-check."""
        d, u = self.own.get("decon"), self.own.get("upstream")
        return statistics.median(u) / statistics.median(d) if d and u and statistics.median(d) > 0 else None

    def cpu_s(self, tool: str) -> float | None:
        """Detection CPU seconds (user + system, all processes; corpus minus one-line corpus)."""
        return self._detect(self.cpu.get(tool, []), self.cpu.get(f"{tool}_tiny", []))

    @property
    def cpu_ratio(self) -> float | None:
        """The ratio on CPU seconds: less sensitive to a busy machine than the wall ratio."""
        d, u = self.cpu_s("decon"), self.cpu_s("upstream")
        return u / d if d and u is not None and d > 0 else None

    def floor_share(self, key: str) -> float | None:
        """Tokenizer floor over decon's detection: CPU over CPU where measured, else seconds over wall."""
        if not self.floor:
            return None
        d_cpu = self.cpu_s("decon")
        if d_cpu and d_cpu > 0 and f"{key}_cpu_total" in self.floor:
            return self.floor[f"{key}_cpu_total"] / d_cpu
        secs = self.floor["seconds" if key == "encode" else "clean_encode_seconds"]
        return secs / self.decon_s if self.decon_s else None

    def add(self, series: str, res: RunResult) -> None:
        getattr(self, series).append(res.wall)
        self.cpu.setdefault(series, []).append(res.cpu)
        if series in ("decon", "upstream") and "detection_seconds" in res.fields:
            self.own.setdefault(series, []).append(res.fields["detection_seconds"])


def warm_cache(corpus: Corpus, cache_dir: Path, work: Path) -> RunResult:
    """Fill decon's index cache for ``corpus``'s reference set; confirm a second run loads it."""
    run_decon(corpus.tiny_dir, corpus.evals_dir, work / "r-fill", 1, cache_dir)
    warm = run_decon(corpus.tiny_dir, corpus.evals_dir, work / "r-warm", 1, cache_dir)
    if "loaded from cache" not in warm.stderr:
        print("warning: decon did not load its index from the cache", file=sys.stderr)
    return warm


def measure(corpus: Corpus, workers: int, args: argparse.Namespace, cache_dir: Path, work: Path) -> Cell:
    """``args.repeats`` rounds of: decon one-line, decon corpus, upstream one-line, upstream corpus."""
    cell = Cell(corpus.name, workers)
    rep_d, rep_u = work / f"{corpus.name}-w{workers}-decon", work / f"{corpus.name}-w{workers}-upstream"
    for r in range(args.repeats):
        print(f"  {corpus.name}, {workers} worker(s), round {r + 1}/{args.repeats} ...", flush=True)
        if not args.own_times:
            cell.add("decon_tiny", run_decon(corpus.tiny_dir, corpus.evals_dir, work / "tiny-d", workers, cache_dir))
        res = run_decon(corpus.train_dir, corpus.evals_dir, rep_d, workers, cache_dir)
        cell.add("decon", res)
        cell.decon_rss_mb = max(cell.decon_rss_mb, res.peak_rss_mb)
        if args.no_upstream:
            continue
        if not args.own_times:
            cell.add("upstream_tiny", run_upstream(args.upstream, corpus.tiny_dir, corpus.evals_dir,
                                                   work / "tiny-u", workers))
        res = run_upstream(args.upstream, corpus.train_dir, corpus.evals_dir, rep_u, workers)
        cell.add("upstream", res)
        print(f"    walls s: {_walls(cell, -1)}", flush=True)
        cell.upstream_rss_mb = max(cell.upstream_rss_mb, res.peak_rss_mb)
    if not args.no_upstream:
        truth = read_truth(corpus.truth) if corpus.truth and corpus.truth.is_file() else None
        cell.matches = compare_matches(read_matches(rep_d), read_matches(rep_u), truth)
    if not args.no_floor:
        print(f"  tokenizer floor, {workers} process(es) ...", flush=True)
        cell.floor = tokenizer_floor(corpus.files, workers, Path(__file__).resolve())
        cell.tokens = int(cell.floor["tokens"])
    return cell


def index_checks(corpus: Corpus, cache_dir: Path, work: Path) -> dict[str, float]:
    """Cold index build (--no-index-cache) and warm cache load of ``corpus``'s reference set."""
    print("Index: cold build and warm load ...", flush=True)
    cold = run_decon(corpus.tiny_dir, corpus.evals_dir, work / "r-cold", 1, cache_dir, "--no-index-cache")
    warm = warm_cache(corpus, cache_dir, work)
    return {"cold_s": cold.fields.get("index_seconds", float("nan")), "cold_wall": cold.wall, "cold_cpu": cold.cpu,
            "cold_rss_mb": cold.peak_rss_mb, "load_s": warm.fields.get("index_seconds", float("nan")),
            "warm_wall": warm.wall, "warm_rss_mb": warm.peak_rss_mb}


# ---------------------------------------------------------------------------------------------
# Extras: purify, server memory, profile
# ---------------------------------------------------------------------------------------------

def purify_row(corpus: Corpus, workers: int, cache_dir: Path, work: Path) -> tuple[str, str]:
    print(f"Purify, {workers} worker(s) ...", flush=True)
    pur = run_decon(corpus.train_dir, corpus.evals_dir, work / "r-purify", workers, cache_dir, "--purify",
                    "--cleaned-output-dir", str(work / "cleaned"))
    shutil.rmtree(work / "cleaned", ignore_errors=True)
    return (f"Purify {corpus.name}, {workers} worker(s)",
            f"process {pur.wall:.2f} s (detect {pur.fields.get('detection_seconds', float('nan')):.2f} s), "
            f"peak RSS {pur.peak_rss_mb:.0f} MB")


def _format_copies(corpus: Corpus, work: Path) -> dict[str, Path]:
    """The corpus as JSONL (itself), .jsonl.zst and Parquet, one folder each (rebuilt every run)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    from decon.common.data_reader import open_binary

    out = {"JSONL": corpus.train_dir}
    for label, ext in ((".jsonl.zst", ".jsonl.zst"), ("Parquet", ".parquet")):
        folder = work / f"formats-{corpus.name}-{ext.strip('.').replace('.', '-')}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for f in corpus.files:
            stem = f.name.split(".jsonl")[0] if ".jsonl" in f.name else f.stem
            with open_binary(f) as fh:
                raw = fh.read()
            if ext == ".parquet":
                rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
                pq.write_table(pa.Table.from_pylist(rows), folder / f"{stem}.parquet", row_group_size=10_000)
            else:
                (folder / f"{stem}.jsonl.zst").write_bytes(zstandard.ZstdCompressor(level=3).compress(raw))
        out[label] = folder
    return out


def _report_rows(reports: Path) -> list[bytes]:
    """Report lines without training_file (the file's own name differs between formats)."""
    rows = []
    for f in sorted(reports.rglob("*.jsonl")):
        for line in f.read_bytes().splitlines():
            obj = json.loads(line)
            obj.pop("training_file", None)
            rows.append(json.dumps(obj, sort_keys=True).encode())
    return sorted(rows)


def format_rows(corpus: Corpus, repeats: int, cache_dir: Path, work: Path) -> list[tuple[str, str]]:
    """The same corpus read as JSONL, .jsonl.zst and Parquet by decon, 1 worker: median wall, peak RSS,
    and whether the reports agree."""
    print(f"Input formats ({corpus.name}, 1 worker) ...", flush=True)
    copies = _format_copies(corpus, work)
    walls: dict[str, list[float]] = {}
    rss: dict[str, float] = {}
    reports: dict[str, list[bytes]] = {}
    for _ in range(repeats):
        for label, folder in copies.items():
            res = run_decon(folder, corpus.evals_dir, work / "r-format", 1, cache_dir)
            walls.setdefault(label, []).append(res.wall)
            rss[label] = max(rss.get(label, 0.0), res.peak_rss_mb)
            reports[label] = _report_rows(work / "r-format")
    base = statistics.median(walls["JSONL"])
    rows = []
    for label, values in walls.items():
        med = statistics.median(values)
        same = "same matches as JSONL" if reports[label] == reports["JSONL"] else "MATCHES DIFFER from JSONL"
        rows.append((f"Input {label} ({corpus.name}, 1 worker)",
                     f"{med:.2f} s median of {len(values)} ({med / base:.2f}x JSONL's time), peak RSS "
                     f"{rss[label]:.0f} MB, {same}"))
    return rows


def server_rows(corpus: Corpus, cache_dir: Path, work: Path) -> list[tuple[str, str]]:
    from bench_memory import server_pss

    job_file = work / "job.jsonl"
    with open(corpus.files[0], "rb") as src:
        job_file.write_bytes(b"".join(line for _, line in zip(range(1000), src, strict=False)))
    rows, pss = [], {}
    for w in (1, 2):
        print(f"Server PSS, {w} worker(s) ...", flush=True)
        pss[w] = server_pss(w, cache_dir, corpus.evals_dir, job_file, work)
        rows.append((f"Server, {w} worker(s)", f"PSS {pss[w]['pss_mb']:.0f} MB after 1 job/worker "
                                                f"(idle {pss[w]['idle_pss_mb']:.0f} MB, {pss[w]['processes']} "
                                                f"processes, ready in {pss[w]['ready_seconds']:.1f} s)"))
    rows.append(("Server PSS 2w / 1w", f"{pss[2]['pss_mb'] / pss[1]['pss_mb']:.2f}  "
                                       f"(idle {pss[2]['idle_pss_mb'] / pss[1]['idle_pss_mb']:.2f}; target < 1.3)"))
    return rows


def profile(corpus: Corpus, cache_dir: Path, work: Path) -> Path:
    """cProfile decon (1 worker, warm cache) on ``corpus``; write the dump, print its top."""
    import pstats

    warm_cache(corpus, cache_dir, work)
    out = work.parent / f"profile-{corpus.name}.prof"
    reports = work / f"profile-{corpus.name}"
    shutil.rmtree(reports, ignore_errors=True)
    cmd = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "decon", "detect", "--training-dir",
           str(corpus.train_dir), "--evals-dir", str(corpus.evals_dir), "--report-output-dir", str(reports),
           "--worker-threads", "1"]
    print("$ " + shlex.join(cmd), flush=True)
    subprocess.run(cmd, env=decon_env(cache_dir), check=True, stdout=subprocess.DEVNULL)
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    print(f"cProfile dump: {out}  (e.g. python -m pstats {out}, or snakeviz/tuna if installed)")
    return out


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _ratio_cell(c: Cell) -> str:
    if c.ratio is None:
        return "-"
    if (c.decon_s or 0) <= 0 or (c.upstream_s or 0) <= 0:
        return "n/a (noise: a one-line run outlasted its corpus run)"
    return f"**{c.ratio:.2f}x**" + ("" if c.ratio >= TARGET_RATIO else " (<1.5)")


def format_table(cells: list[Cell]) -> list[str]:
    """The side-by-side table (markdown, so it pastes into README/notes as it is)."""
    out = ["| corpus | workers | decon s | upstream s | ratio (up/decon) | CPU ratio | own-time ratio | "
           "tokenizer floor s (share) | clean+encode s (share) | matches decon vs upstream |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        floor = clean = "-"
        if c.floor and c.floor_share("encode") is not None:
            floor = f"{c.floor['seconds']:.2f} ({c.floor_share('encode'):.0%})"
            clean = f"{c.floor['clean_encode_seconds']:.2f} ({c.floor_share('clean_encode'):.0%})"
        cpu = "-" if c.cpu_ratio is None or c.cpu_ratio <= 0 else f"{c.cpu_ratio:.2f}x"
        own = "-" if c.own_ratio is None else f"{c.own_ratio:.2f}x"
        out.append(f"| {c.corpus} | {c.workers} | {_s(c.decon_s)} | {_s(c.upstream_s)} | {_ratio_cell(c)} | {cpu} | "
                   f"{own} | {floor} | {clean} | {c.matches.cell() if c.matches else '-'} |")
    return out


def _walls(c: Cell, only: int | None = None) -> str:
    """Every run's wall time (or run ``only``'s): decon (one-line) / upstream (one-line)."""
    def j(xs: list[float]) -> str:
        xs = xs if only is None else xs[only:][:1]
        return "/".join(f"{x:.2f}" for x in xs) or "-"

    return f"decon {j(c.decon)} (one-line {j(c.decon_tiny)}); upstream {j(c.upstream)} (one-line {j(c.upstream_tiny)})"


def detail_rows(cells: list[Cell], corpora: dict[str, Corpus]) -> list[tuple[str, str]]:
    rows = []
    for name, corpus in corpora.items():
        rows.append((f"{name}", f"{corpus.size_mb:.1f} MB, {corpus.docs:,} docs, refs {corpus.evals_dir}"))
    for c in cells:
        rows.append((f"{c.corpus} w{c.workers} walls s", _walls(c)))
        own = {k: statistics.median(v) for k, v in c.own.items() if v}
        extra = (f"own 'Detection time' decon {_s(own.get('decon'))} s, upstream {_s(own.get('upstream'))} s; "
                 f"peak RSS decon {c.decon_rss_mb:.0f} MB, upstream {c.upstream_rss_mb:.0f} MB")
        if c.tokens and c.decon_s:
            extra += f"; decon {c.tokens / c.decon_s / 1e6:.2f} M tok/s"
            if c.upstream_s:
                extra += f", upstream {c.tokens / c.upstream_s / 1e6:.2f} M tok/s"
        m = c.matches
        if m and m.truth_total is not None:
            extra += (f"; injected items found: decon {m.truth_found_decon}, upstream {m.truth_found_upstream} "
                      f"of {m.truth_total}")
        rows.append((f"{c.corpus} w{c.workers}", extra))
    return rows


def index_rows(idx: dict[str, float], peak_rss: float) -> list[tuple[str, str]]:
    def mark(ok: bool) -> str:
        return "ok" if ok else "OVER TARGET"

    return [
        ("Cold index build (all evals)", f"{idx['cold_s']:.2f} s (process {idx['cold_wall']:.2f} s, "
                                         f"CPU {idx.get('cold_cpu', float('nan')):.2f} s, peak RSS "
                                         f"{idx['cold_rss_mb']:.0f} MB)  target <= {TARGET_COLD_S:g} s: "
                                         f"{mark(idx['cold_s'] <= TARGET_COLD_S)}"),
        ("Index cache load (warm)", f"{idx['load_s']:.2f} s (whole one-line `decon detect` {idx['warm_wall']:.2f} s)"
                                    f"  target < {TARGET_LOAD_S:g} s: {mark(idx['load_s'] < TARGET_LOAD_S)}"),
        ("Peak RSS (any decon run)", f"{peak_rss:.0f} MB  target <= {TARGET_RSS_MB:g} MB: "
                                     f"{mark(peak_rss <= TARGET_RSS_MB)}"),
    ]


def print_rows(rows: list[tuple[str, str]]) -> None:
    width = max((len(k) for k, _ in rows), default=0) + 2
    for k, v in rows:
        print(f"{k:<{width}}{v}")


def header(args: argparse.Namespace, argv: list[str]) -> list[str]:
    load = os.getloadavg()
    lines = [f"$ {shlex.join(argv)}",
             f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
             + ("  (busy: timings are pessimistic, ratios noisier)" if load[0] > 0.5 else "  (idle)"),
             f"python {sys.version.split()[0]}; decon {_decon_version()}; "
             + ("upstream: not run" if args.no_upstream else f"upstream {upstream_version(args.upstream)} "
                                                               f"({args.upstream})"),
             f"repeats {args.repeats} (median); decon index cache: warm (filled before timing); "
             f"workers {args.workers} (decon --worker-threads N vs upstream --worker-threads N)"]
    return lines


def _decon_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("decon")
    except PackageNotFoundError:
        return "?"


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def run_all(args: argparse.Namespace, corpora: dict[str, Corpus], cache_dir: Path, work: Path
            ) -> tuple[list[Cell], list[tuple[str, str]], dict[str, float] | None]:
    """Index checks, every corpus at every worker count, then purify and server memory."""
    all_evals = next((c for c in corpora.values() if c.evals_dir == args.evals), next(iter(corpora.values())))
    idx = None if args.no_index_check else index_checks(all_evals, cache_dir, work)
    cells = []
    for corpus in corpora.values():
        print(f"Corpus {corpus.name}: warming decon's index cache ...", flush=True)
        warm_cache(corpus, cache_dir, work)
        for w in args.worker_counts:
            cells.append(measure(corpus, w, args, cache_dir, work))
            print("  => " + format_table(cells[-1:])[2], flush=True)
            write_json(args.json, {"partial": True, "cells": cells})
    extras: list[tuple[str, str]] = []
    if not args.no_purify:
        extras.append(purify_row(all_evals, max(args.worker_counts), cache_dir, work))
    if not args.no_server:
        extras.extend(server_rows(all_evals, cache_dir, work))
    if not args.no_formats:
        first = next(iter(corpora.values()))
        extras.extend(format_rows(first, args.repeats or 3, cache_dir, work))
    return cells, extras, idx


_METHOD = {False: "detection s = median wall(corpus) - median wall(one-line corpus)",
           True: "detection s = median of each tool's own 'Detection time' (--own-times)"}


def report(args: argparse.Namespace, head: list[str], corpora: dict[str, Corpus], cells: list[Cell],
           extras: list[tuple[str, str]], idx: dict[str, float] | None) -> None:
    print("\n== decon bench ==")
    print("\n".join(head))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"{_METHOD[args.own_times]}; ratio = upstream s / decon s (> 1: decon faster; target >= {TARGET_RATIO}); "
          "CPU ratio = the same on user+system seconds;\nown-time ratio = the tools' own 'Detection time' figures; floor = decon's tokenizer alone on the same texts, "
          "CPU s of the slowest process (share: floor CPU / decon's detection CPU)\n")
    print("\n".join(format_table(cells)))
    print()
    rows = detail_rows(cells, corpora)
    if idx is not None:
        rss = max([idx["cold_rss_mb"], idx["warm_rss_mb"], *(c.decon_rss_mb for c in cells)])
        rows += index_rows(idx, rss)
    print_rows(rows + extras)
    write_json(args.json, {"header": head, "index": idx, "extras": extras, "cells": cells})


def load_cells(path: Path) -> list[Cell]:
    """The cells of a --json file (derived figures are recomputed)."""
    names = set(Cell.__dataclass_fields__)
    cells = []
    for raw in json.loads(path.read_text())["cells"]:
        cell = Cell(**{k: v for k, v in raw.items() if k in names})
        cell.matches = MatchCheck(**raw["matches"]) if raw.get("matches") else None
        cells.append(cell)
    return cells


def write_json(path: Path | None, result: dict) -> None:
    """``result`` as JSON (cells with their derived figures), if a path was given."""
    if path is None:
        return
    cells = [{**asdict(c), "decon_s": c.decon_s, "upstream_s": c.upstream_s, "ratio": c.ratio,
              "cpu_ratio": c.cpu_ratio, "own_ratio": c.own_ratio} for c in result["cells"]]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({**result, "cells": cells}, indent=1))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    shown = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
    args = parse_args(argv)
    if args.floor_worker:
        task = json.loads(args.floor_worker)
        print(json.dumps(floor_worker(task["paths"], task["part"], task["parts"])))
        return 0
    if args.from_json:
        print("\n".join(format_table(load_cells(args.from_json))))
        return 0
    if not args.no_upstream and not args.upstream.is_file():
        raise SystemExit(f"upstream binary not found: {args.upstream} (--upstream PATH, or --no-upstream)")
    args.data.mkdir(parents=True, exist_ok=True)
    cache_dir, work = args.data / "index-cache", args.data / "runs"
    work.mkdir(exist_ok=True)
    if args.profile:
        profile(build_corpus(args.profile, args), cache_dir, work)
        return 0
    head = header(args, shown)
    print("\n".join(head), flush=True)
    corpora = {name: build_corpus(name, args) for name in args.corpus_names}
    cells, extras, idx = run_all(args, corpora, cache_dir, work)
    report(args, head, corpora, cells, extras, idx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
