"""scripts/bench.py: argument parsing, the ratio table, the match check, and one end-to-end smoke run
(a tiny prose corpus, with decon itself standing in for the upstream binary). No timing is asserted."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench  # noqa: E402
from bench_tools import compare_matches, read_matches  # noqa: E402

pytestmark = pytest.mark.slow  # real clusters, servers or browsers: `make test` runs it, `make test-fast` does not


def test_defaults_and_quick() -> None:
    args = bench.parse_args([])
    assert (args.repeats, args.size_mb, args.docs, args.worker_counts) == (3, 40.0, 20000, [1, 2])
    assert args.corpus_names == ["prose-like", "eval-like", "doc-prose"]
    assert args.upstream.name == "decon" and args.upstream.parent.name == "oracle"
    quick = bench.parse_args(["--quick", "--corpora", "eval-like", "--workers", "2"])
    assert (quick.repeats, quick.size_mb, quick.docs, quick.worker_counts) == (1, 4.0, 2000, [2])
    assert bench.parse_args(["--quick", "--repeats", "5"]).repeats == 5


def test_bad_arguments_exit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--corpora", "prose-like,novels"])
    assert "unknown corpus novels" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--workers", "0"])


def test_table_ratio_and_floor_share() -> None:
    cell = bench.Cell("eval-like", 1, decon=[6.0, 5.0, 9.0], decon_tiny=[1.0, 1.0, 2.0],
                      upstream=[11.0, 10.0, 12.0], upstream_tiny=[4.0, 4.0, 4.0],
                      floor={"seconds": 2.0, "clean_encode_seconds": 3.0, "encode_cpu_total": 2.0,
                             "clean_encode_cpu_total": 3.0, "tokens": 100, "docs": 10})
    assert cell.decon_s == 5.0 and cell.upstream_s == 7.0
    slow = bench.Cell("doc-prose", 2, decon=[3.0], decon_tiny=[1.0], upstream=[3.0], upstream_tiny=[1.0],
                      cpu={"decon": [6.0], "decon_tiny": [1.0], "upstream": [5.0], "upstream_tiny": [1.0]})
    lines = bench.format_table([cell, slow])
    assert lines[0].startswith("| corpus | workers | decon s | upstream s | ratio")
    assert lines[2] == "| eval-like | 1 | 5.00 | 7.00 | **1.40x** (<1.5) | - | - | 2.00 (40%) | 3.00 (60%) | - |"
    cell.cpu = {"decon": [9.0], "decon_tiny": [1.0], "upstream": [9.0], "upstream_tiny": [1.0]}
    assert cell.floor_share("encode") == 0.25 and cell.cpu_ratio == 1.0  # CPU over CPU when measured
    assert "| doc-prose | 2 | 2.00 | 2.00 | **1.00x** (<1.5) | 0.80x | - | - | - | - |" == lines[3]
    own = bench.Cell("eval-like", 1, decon=[9.0, 9.5], upstream=[9.0, 9.0],
                     own={"decon": [2.0, 4.0], "upstream": [6.0, 6.0]})  # --own-times: no one-line runs
    assert (own.decon_s, own.upstream_s, own.ratio, own.cpu_ratio, own.own_ratio) == (3.0, 6.0, 2.0, None, 2.0)
    noisy = bench.Cell("prose-like", 1, decon=[3.0], decon_tiny=[1.0], upstream=[3.0], upstream_tiny=[4.0])
    assert "n/a (noise" in bench.format_table([noisy])[2]
    alone = bench.Cell("prose-like", 1, decon=[3.0], decon_tiny=[1.0])
    assert alone.ratio is None and alone.cpu_ratio is None and "| - | - | - | - |" in bench.format_table([alone])[2]


def _write_report(path: Path, rows: list[tuple[int, str, int]]) -> None:
    path.mkdir(parents=True)
    recs = [{"training_file": "train.jsonl", "training_line": ln, "eval_key": k, "eval_instance_index": i}
            for ln, k, i in rows]
    (path / "train-simple-0.80.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))


def test_match_check(tmp_path: Path) -> None:
    _write_report(tmp_path / "d", [(3, "mmlu", 7), (3, "gsm8k", 1), (9, "mmlu", 2)])
    _write_report(tmp_path / "u", [(3, "mmlu", 7), (9, "mmlu", 2)])
    d, u = read_matches(tmp_path / "d"), read_matches(tmp_path / "u")
    check = compare_matches(d, u, truth={(3, "mmlu", 7), (5, "mmlu", 1)})
    assert not check.same
    assert check.cell() == "DIFFER: lines 2 vs 2; 2 common, 1 only decon, 0 only upstream"
    assert (check.truth_found_decon, check.truth_found_upstream, check.truth_total) == (1, 1, 2)
    assert compare_matches(u, u).cell() == "same: 2 lines, 2 matches"


def test_smoke_run_with_decon_as_upstream(tmp_path: Path) -> None:
    """The whole measuring path on a tiny corpus; decon stands in for the upstream binary, so both
    sides must report the same matches."""
    fake = tmp_path / "upstream"
    fake.write_text(f"#!/bin/sh\nDECON_QUIET=1 exec {sys.executable} -m decon \"$@\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--upstream", str(fake), "--corpora", "prose-like",
           "--evals", str(ROOT / "fixtures" / "test-reference"), "--size-mb", "0.3", "--repeats", "1",
           "--workers", "1", "--no-index-check", "--no-purify", "--no-server", "--data", str(tmp_path / "data"),
           "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "DECON_QUIET": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| prose-like | 1 |" in proc.stdout
    row = next(ln for ln in proc.stdout.splitlines() if ln.startswith("| prose-like | 1 |"))
    assert "same: " in row and "DIFFER" not in row
    assert "machine: " in proc.stdout and "--corpora prose-like" in proc.stdout
    again = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), "--from-json", str(out)],
                           capture_output=True, text=True, check=True)
    assert row in again.stdout.splitlines()
    result = orjson.loads(out.read_bytes())
    cell = result["cells"][0]
    assert cell["matches"]["decon"] == cell["matches"]["upstream"] > 0
    assert cell["floor"]["tokens"] > 0 and len(cell["decon"]) == len(cell["upstream"]) == 1
