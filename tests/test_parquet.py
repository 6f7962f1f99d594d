"""Issue 31, first slice: Parquet and Arrow IPC training files in `decon detect` (reading in batches,
nulls, nested columns, errors, equal reports to JSONL, cleaned copies in the same format)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import zstandard

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from decon.cli import main  # noqa: E402
from decon.common.columnar import BATCH_ROWS  # noqa: E402
from decon.common.data_reader import DataFile, DataFileError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TRAINING = REPO / "tests" / "data" / "server" / "training"
REFERENCE = REPO / "tests" / "data" / "server" / "reference"
ENGINE = ["--evals-dir", str(REFERENCE), "--sample-every-m-tokens", "1", "--no-index-cache", "--worker-threads", "2"]


def corpus_docs(repeat: int = 30) -> list[dict]:
    """Clean and contaminated documents, with other fields beside the text, some without text."""
    texts = [orjson.loads(line)["text"] for f in sorted(TRAINING.glob("*.jsonl"))
             for line in f.read_bytes().splitlines() if line.strip()]
    docs = []
    for r in range(repeat):
        for i, text in enumerate(texts):
            n = len(docs)
            value = None if n % 37 == 5 else "" if n % 41 == 7 else text
            docs.append({"id": n, "text": value, "meta": {"source": f"s{r}", "text": value, "n": i}})
    return docs


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    return path


def write_parquet(path: Path, docs: list[dict], row_group_size: int = 50) -> Path:
    pq.write_table(pa.Table.from_pylist(docs), path, row_group_size=row_group_size)
    return path


def detect(training: Path, out: Path, *extra: str) -> list[dict]:
    assert main(["detect", "--training-dir", str(training), "--report-output-dir", str(out), *ENGINE, *extra]) == 0
    entries = []
    for report in sorted(out.glob("*.jsonl")):
        for line in report.read_bytes().splitlines():
            entry = orjson.loads(line)
            entry.pop("training_file")  # the file's own name: x.jsonl, x.parquet
            entries.append(entry)
    return entries


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("DECON_QUIET", "1")


# ---- reading ------------------------------------------------------------------------------------

def test_rows_come_out_as_the_content_column_across_row_groups(tmp_path):
    docs = [{"id": i, "text": None if i % 5 == 0 else f"row {i}", "meta": {"text": f"m{i}", "k": i}}
            for i in range(BATCH_ROWS + 300)]
    path = write_parquet(tmp_path / "x.parquet", docs, row_group_size=700)
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    with DataFile(path) as data:
        lines = list(data.lines(1 << 20, "text"))
        nested = list(data.lines(1 << 20, "meta.text"))
        bounded = list(data.lines(6, "text"))
    assert len(lines) == len(docs)
    assert lines == [d["text"] or b"{}" for d in docs]  # the text itself; a null is a row without content
    assert nested == [d["meta"]["text"] for d in docs]
    assert bounded[1] == "row 1" and bounded[1001] is None  # over max_line_bytes
    multibyte = write_parquet(tmp_path / "m.parquet", [{"text": "é" * 10}])
    with DataFile(multibyte) as data:
        assert list(data.lines(19, "text")) == [None] and list(data.lines(20, "text")) == ["é" * 10]


def test_arrow_ipc_file_and_stream_read_like_parquet(tmp_path):
    table = pa.Table.from_pylist([{"text": f"doc {i}", "n": i} for i in range(10)])
    with pa.ipc.new_file(str(tmp_path / "a.arrow"), table.schema) as w:
        w.write_table(table, max_chunksize=3)
    with pa.ipc.new_stream(str(tmp_path / "s.arrow"), table.schema) as w:
        w.write_table(table, max_chunksize=4)
    for name in ("a.arrow", "s.arrow"):
        with DataFile(tmp_path / name) as data:
            assert list(data.lines(1 << 20, "text")) == [f"doc {i}" for i in range(10)]


@pytest.mark.parametrize(("key", "message"), [
    ("body", "no column 'body' (the file has: id, text, meta); set --content-key"),
    ("meta.body", "no column 'meta.body' (meta has: source, text, n); set --content-key"),
    ("id", "column 'id' is int64, not text"),
    ("text.x", "column 'text' is string, not a struct, so 'text.x' cannot be read"),
])
def test_a_missing_or_wrong_column_is_named(tmp_path, key, message):
    path = write_parquet(tmp_path / "x.parquet", corpus_docs(1))
    with DataFile(path) as data, pytest.raises(DataFileError) as info:
        list(data.lines(1 << 20, key))
    assert str(info.value) == f"{path}: {message}"


def test_truncated_and_garbage_files_fail_naming_the_file(tmp_path):
    good = write_parquet(tmp_path / "good.parquet", corpus_docs(3))
    data = good.read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.parquet").write_bytes(b"PAR1" + b"\x00" * 100)
    (tmp_path / "junk.arrow").write_bytes(b"not arrow at all")
    for name in ("cut.parquet", "junk.parquet", "junk.arrow"):
        with DataFile(tmp_path / name) as f, pytest.raises(DataFileError) as info:
            list(f.lines(1 << 20, "text"))
        assert str(info.value).startswith(f"{tmp_path / name}: corrupt or truncated"), str(info.value)


# ---- decon detect -----------------------------------------------------------------------------------

def test_reports_equal_for_jsonl_zst_and_parquet(tmp_path):
    docs = corpus_docs()
    inputs = {"jsonl": tmp_path / "jsonl", "zst": tmp_path / "zst", "parquet": tmp_path / "parquet"}
    for d in inputs.values():
        d.mkdir()
    write_jsonl(inputs["jsonl"] / "part.jsonl", docs)
    (inputs["zst"] / "part.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress((inputs["jsonl"] / "part.jsonl").read_bytes()))
    write_parquet(inputs["parquet"] / "part.parquet", docs)
    got = {kind: detect(d, tmp_path / f"out-{kind}") for kind, d in inputs.items()}
    assert got["jsonl"], "the corpus should hold contamination"
    # null and empty texts: JSONL's "" is an empty document and null has no content; in Parquet both
    # are rows without content. Neither is ever a match, so the reports are equal.
    assert got["parquet"] == got["jsonl"] == got["zst"]
    nested = detect(inputs["parquet"], tmp_path / "out-nested", "--content-key", "meta.text")
    assert nested == got["jsonl"]


def test_cli_errors_are_one_line_and_skip_bad_files_goes_on(tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    write_parquet(train / "a.parquet", corpus_docs(2))
    good = (train / "a.parquet").read_bytes()
    (train / "b.parquet").write_bytes(good[: len(good) // 3])
    assert main(["detect", "--training-dir", str(train), "--report-output-dir", str(tmp_path / "o1"), *ENGINE]) != 0
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("Error")]
    assert len(err) == 1 and str(train / "b.parquet") in err[0] and "corrupt or truncated" in err[0], err
    assert main(["detect", "--training-dir", str(train), "--report-output-dir", str(tmp_path / "o2"),
                 "--skip-bad-files", *ENGINE]) == 0
    assert (tmp_path / "o2" / "a-simple-0.80.jsonl").exists()

    assert main(["detect", "--training-dir", str(train / "a.parquet"), "--report-output-dir", str(tmp_path / "o3"),
                 "--content-key", "body", *ENGINE]) != 0
    text = capsys.readouterr().err
    err = [x for x in text.splitlines() if x.startswith("Error")]
    assert "Traceback" not in text and len(err) == 1 and "no column 'body'" in err[0] and str(train / "a.parquet") in err[0], err


def test_without_pyarrow_a_parquet_input_is_a_one_line_error(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    write_parquet(train / "a.parquet", corpus_docs(1))
    code = ("import sys; sys.modules['pyarrow'] = None\n"
            "from decon.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, "detect", "--training-dir", str(train),
                           "--report-output-dir", str(tmp_path / "out"), *ENGINE],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == ("Error: reading Parquet and Arrow files needs pyarrow, "
                                                    "an optional extra: pip install 'decon[parquet]'"), proc.stderr


# ---- purify ---------------------------------------------------------------------------------------

def test_purified_parquet_keeps_schema_row_group_size_and_exactly_the_clean_rows(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    docs = corpus_docs()
    src = write_parquet(train / "part.parquet", docs, row_group_size=40)
    entries = detect(train, tmp_path / "out", "--purify", "--cleaned-output-dir", str(tmp_path / "clean"))
    dirty = {e["training_line"] for e in entries}
    assert dirty
    cleaned = tmp_path / "clean" / "part.parquet"
    assert sorted(p.name for p in (tmp_path / "clean").iterdir()) == ["part.parquet"]
    out, original = pq.ParquetFile(cleaned), pq.ParquetFile(src)
    assert out.schema_arrow == original.schema_arrow
    sizes = [out.metadata.row_group(i).num_rows for i in range(out.metadata.num_row_groups)]
    assert sizes[:-1] == [40] * (len(sizes) - 1) and 0 < sizes[-1] <= 40
    assert out.metadata.row_group(0).column(0).compression == original.metadata.row_group(0).column(0).compression
    assert out.read().to_pylist() == [d for n, d in enumerate(docs) if n not in dirty]


def test_purified_arrow_file_drops_the_contaminated_rows(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    docs = corpus_docs(5)
    table = pa.Table.from_pylist(docs)
    with pa.ipc.new_file(str(train / "part.arrow"), table.schema) as w:
        w.write_table(table, max_chunksize=25)
    entries = detect(train, tmp_path / "out", "--purify", "--cleaned-output-dir", str(tmp_path / "clean"))
    dirty = {e["training_line"] for e in entries}
    assert dirty
    with pa.ipc.open_file(str(tmp_path / "clean" / "part.arrow")) as reader:
        assert reader.schema == table.schema
        assert reader.read_all().to_pylist() == [d for n, d in enumerate(docs) if n not in dirty]


def test_explain_reads_a_parquet_row(tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    docs = corpus_docs(2)
    write_parquet(train / "part.parquet", docs)
    entries = detect(train, tmp_path / "out")
    row = entries[0]["training_line"]
    capsys.readouterr()
    assert main(["explain", "--training-file", str(train / "part.parquet"), "--line", str(row), "--json",
                 "--evals-dir", str(REFERENCE), "--sample-every-m-tokens", "1", "--no-index-cache"]) == 0
    verdict = orjson.loads(capsys.readouterr().out)
    assert verdict["contaminated"] is True


# ---- decon server -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_server_scans_parquet_and_writes_a_parquet_cleaned_copy(tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    from test_server_harness import ServerProcess

    docs = corpus_docs(5)
    jsonl = write_jsonl(tmp_path / "part.jsonl", docs)
    zst = tmp_path / "part.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(jsonl.read_bytes()))
    parquet = write_parquet(tmp_path / "part.parquet", docs, row_group_size=30)
    server = ServerProcess(["--reference-input", str(REFERENCE), "--sample-every-m-tokens", "1", "--no-index-cache",
                            "--worker-threads", "1", "--report-output-dir", str(tmp_path / "reports"),
                            "--state-dir", str(tmp_path / "state"), "--purify",
                            "--cleaned-output-dir", str(tmp_path / "cleaned")])
    try:
        server.wait_ready()
        done = {}
        for path in (jsonl, zst, parquet):
            job = server.submit_ok(path)
            deadline = time.monotonic() + 60
            while (status := server.status(job))["status"] in ("pending", "processing"):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert status["status"] == "completed", status
            done[path.suffix] = status
    finally:
        server.kill()

    def entries(status: dict) -> list[dict]:
        rows = [orjson.loads(x) for x in Path(status["output_path"]).read_bytes().splitlines()]
        for row in rows:
            row.pop("training_file")
        return rows

    assert entries(done[".parquet"]) == entries(done[".jsonl"]) == entries(done[".zst"]) != []
    cleaned = Path(done[".parquet"]["purified_path"])
    assert cleaned.suffix == ".parquet" and cleaned.name.startswith(done[".parquet"]["job_id"])
    dirty = {e["training_line"] for e in entries(done[".parquet"])}
    table = pq.read_table(cleaned)
    assert table.schema == pq.read_schema(parquet)
    assert table.to_pylist() == [d for n, d in enumerate(docs) if n not in dirty]


# ---- decon ray and the orchestrator's names -----------------------------------------------------------

def test_orchestrator_names_keep_a_columnar_input_in_its_format():
    from decon.cloud.naming import is_input_name, output_names

    assert is_input_name("a/b.parquet") and is_input_name("x.arrow") and not is_input_name("x.csv")
    names = output_names("dir/shard-0001.parquet")
    assert names.report == "dir/shard-0001.report.jsonl" and names.clean_marker == "dir/shard-0001.clean"
    assert names.cleaned == "dir/shard-0001.clean.parquet"
    assert output_names("dir/shard.jsonl.zst").cleaned == "dir/shard.clean.jsonl.gz"


@pytest.mark.slow
def test_decon_ray_on_a_local_parquet_folder(tmp_path):
    pytest.importorskip("ray")
    train = tmp_path / "train"
    (train / "sub").mkdir(parents=True)
    docs = corpus_docs(3)
    write_parquet(train / "sub" / "part.parquet", docs, row_group_size=25)
    write_jsonl(train / "plain.jsonl", docs)
    (train / "packed.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress((train / "plain.jsonl").read_bytes()))
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(DECON_QUIET="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "decon", "ray", "--input", str(train), "--report-output-dir",
                           str(out / "reports"), "--cleaned-output-dir", str(out / "cleaned"), "--purify",
                           "--evals-dir", str(REFERENCE), "--sample-every-m-tokens", "1", "--num-cpus", "1",
                           "--object-store-mb", "80"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]

    def entries(path: Path) -> list[dict]:
        rows = [orjson.loads(x) for x in path.read_bytes().splitlines()]
        for row in rows:
            row.pop("training_file")
        return rows

    from_parquet = entries(out / "reports" / "sub" / "part.report.jsonl")
    assert from_parquet == entries(out / "reports" / "plain.report.jsonl") != []
    assert from_parquet == entries(out / "reports" / "packed.report.jsonl")
    dirty = {e["training_line"] for e in from_parquet}
    cleaned = pq.read_table(out / "cleaned" / "sub" / "part.clean.parquet")
    assert cleaned.to_pylist() == [d for n, d in enumerate(docs) if n not in dirty]
    assert (out / "cleaned" / "plain.clean.jsonl.gz").exists()


# ---- Parquet reference sets --------------------------------------------------------------------------

def _parquet_reference(tmp_path: Path) -> Path:
    refs = tmp_path / "refs-parquet"
    refs.mkdir()
    rows = [orjson.loads(x) for f in sorted(REFERENCE.glob("*.jsonl")) for x in f.read_bytes().splitlines() if x.strip()]
    pq.write_table(pa.Table.from_pylist(rows), refs / "question_answer_reference.parquet", row_group_size=3)
    return refs


@pytest.mark.parametrize("mode", ["simple", "minhash"])
def test_a_parquet_reference_set_gives_the_same_reports(tmp_path, mode):
    train = tmp_path / "train"
    train.mkdir()
    write_jsonl(train / "part.jsonl", corpus_docs(2))
    refs = _parquet_reference(tmp_path)
    args = ["--training-dir", str(train), "--sample-every-m-tokens", "1", "--no-index-cache", "--mode", mode]
    got = {}
    for name, evals in (("jsonl", REFERENCE), ("parquet", refs)):
        out = tmp_path / f"out-{name}"
        assert main(["detect", *args, "--evals-dir", str(evals), "--report-output-dir", str(out)]) == 0
        got[name] = [orjson.loads(x) for r in sorted(out.glob("*.jsonl")) for x in r.read_bytes().splitlines()]
        for row in got[name]:
            for key in ("reference_file", "eval_dataset"):  # the reference file's own name
                row.pop(key, None)
    assert got["parquet"] == got["jsonl"]
    assert got["jsonl"] or mode == "minhash"  # MinHash finds none of these partial copies; SIMPLE does


def test_decon_evals_lists_a_parquet_reference_set(tmp_path, capsys):
    refs = _parquet_reference(tmp_path)
    capsys.readouterr()
    assert main(["evals", "--dir", str(refs)]) == 0
    parquet_listing = capsys.readouterr().out
    assert main(["evals", "--dir", str(REFERENCE)]) == 0
    jsonl_listing = capsys.readouterr().out
    assert parquet_listing.replace(str(refs), "X") == jsonl_listing.replace(str(REFERENCE), "X")


# ---- Hugging Face datasets ----------------------------------------------------------------------------

def _hub_folder(root: Path) -> Path:
    """A dataset laid out as the hub lays it out: two configs, train and test splits, a README."""
    docs = corpus_docs(2)
    for rel, part in (("main/train-00000-of-00002.parquet", docs[:20]), ("main/train-00001-of-00002.parquet", docs[20:]),
                      ("main/test-00000-of-00001.parquet", docs[:20]),
                      ("socratic/train-00000-of-00001.parquet", docs[20:])):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_parquet(root / rel, part)
    (root / "README.md").write_text("---\nlicense: mit\n---\n")
    return root


def _reports(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jsonl"))


def test_a_hub_style_folder_is_a_training_dir_and_split_and_config_narrow_it(tmp_path):
    folder = _hub_folder(tmp_path / "gsm8k")
    detect(folder, tmp_path / "all")
    assert _reports(tmp_path / "all") == [
        "main/test-00000-of-00001-simple-0.80.jsonl", "main/train-00000-of-00002-simple-0.80.jsonl",
        "main/train-00001-of-00002-simple-0.80.jsonl", "socratic/train-00000-of-00001-simple-0.80.jsonl"]
    detect(folder, tmp_path / "main-train", "--config-name", "main", "--split", "train")
    assert _reports(tmp_path / "main-train") == ["main/train-00000-of-00002-simple-0.80.jsonl",
                                                 "main/train-00001-of-00002-simple-0.80.jsonl"]
    detect(folder, tmp_path / "test", "--split", "test")
    assert _reports(tmp_path / "test") == ["main/test-00000-of-00001-simple-0.80.jsonl"]


def test_an_empty_selection_is_a_one_line_error(tmp_path, capsys):
    folder = _hub_folder(tmp_path / "ds")
    assert main(["detect", "--training-dir", str(folder), "--report-output-dir", str(tmp_path / "o"),
                 "--split", "validation", *ENGINE]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("Error")]
    assert len(err) == 1 and "no training files for split 'validation'" in err[0] and "main/train-" in err[0]


def _fill_hub_cache(cache: Path, repo: str) -> None:
    """What huggingface_hub leaves after a download: refs/main naming a snapshot folder."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = cache / f"datasets--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    _hub_folder(base / "snapshots" / commit)


def _run_offline(tmp_path: Path, cache: Path, *argv: str, block_hub: bool = False) -> subprocess.CompletedProcess:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "DECON_QUIET": "1",
           "HF_HOME": str(tmp_path / "hf-home"), "TMPDIR": str(tmp_path / "tmp")}
    code = ("import socket, sys\n"
            "def refuse(*a, **k): raise OSError('network use in an offline test')\n"
            "socket.socket.connect = refuse\n"
            + ("sys.modules['huggingface_hub'] = None\n" if block_hub else "")
            + "from decon.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", code, *argv], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_training_dataset_resolves_from_a_filled_hub_cache_offline(tmp_path):
    pytest.importorskip("huggingface_hub")
    cache = tmp_path / "hub"
    _fill_hub_cache(cache, "openai/gsm8k")
    out = tmp_path / "out"
    proc = _run_offline(tmp_path, cache, "detect", "--training-dataset", "openai/gsm8k", "--config-name", "main",
                        "--split", "test", "--report-output-dir", str(out), *ENGINE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _reports(out) == ["main/test-00000-of-00001-simple-0.80.jsonl"]
    assert (tmp_path / "tmp").is_dir() and not list((tmp_path / "tmp").glob("decon-dataset-*"))  # links removed
    expected = detect(cache / "datasets--openai--gsm8k" / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
                      / "main" / "test-00000-of-00001.parquet", tmp_path / "direct")
    got = [orjson.loads(x) for x in (out / _reports(out)[0]).read_bytes().splitlines()]
    for row in got:
        row.pop("training_file")
    assert got and got == expected  # the test split's matches, as when that file is scanned directly

    missing = _run_offline(tmp_path, cache, "detect", "--training-dataset", "nobody/nothing",
                           "--report-output-dir", str(tmp_path / "o2"), *ENGINE)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines()[-1].startswith("Error: cannot get dataset nobody/nothing")


def test_training_dataset_without_huggingface_hub_names_the_extra(tmp_path):
    proc = _run_offline(tmp_path, tmp_path / "hub", "detect", "--training-dataset", "openai/gsm8k",
                        "--report-output-dir", str(tmp_path / "o"), *ENGINE, block_hub=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == ("Error: --training-dataset needs huggingface_hub, an optional "
                                                    "extra: pip install 'decon[hf]'")
