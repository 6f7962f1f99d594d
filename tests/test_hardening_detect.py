"""`decon detect` on hostile input (issue 9): truncated and corrupt compressed files, FIFOs, lines
without bound, unreadable paths, a full disk, SIGINT during purify, leftovers of killed runs."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import zstandard

from decon.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
QA_REF = FIX / "test-reference" / "question_answer_reference.jsonl"
FORMATS = (".gz", ".zst", ".zstd", ".bz2", ".xz")


def decon_cmd() -> list[str]:
    script = Path(sys.executable).parent / "decon"
    return [str(script)] if script.exists() else [sys.executable, "-m", "decon"]


def _contaminated_line() -> bytes:
    return (FIX / "training" / "contaminated_at_beginning.jsonl").read_bytes().splitlines()[0]


def _refs(tmp: Path) -> Path:
    d = tmp / "refs"
    d.mkdir(exist_ok=True)
    shutil.copy(QA_REF, d)
    return d


def _lines(n: int) -> bytes:
    return b"".join(orjson.dumps({"id": i, "text": f"document {i} about rivers and stones"}) + b"\n"
                    for i in range(n))


def compress(ext: str, data: bytes) -> bytes:
    """``data`` in format ``ext``; zstd as two frames with checksums, as a streaming writer makes."""
    if ext == ".gz":
        return gzip.compress(data)
    if ext == ".bz2":
        return bz2.compress(data)
    if ext == ".xz":
        return lzma.compress(data)
    zc = zstandard.ZstdCompressor(write_checksum=True)
    half = data.rfind(b"\n", 0, len(data) // 2) + 1
    return zc.compress(data[:half]) + zc.compress(data[half:])


def damaged(ext: str, data: bytes, kind: str) -> bytes:
    blob = compress(ext, data)
    if kind == "truncated":
        return blob[: len(blob) * 3 // 4]
    mid = len(blob) // 2
    return blob[:mid] + bytes(b ^ 0xA5 for b in blob[mid:mid + 32]) + blob[mid + 32:]


def _detect(args: list[str]) -> int:
    return main(["detect", "--worker-threads", "1", "--no-index-cache", *args])


def _one_error_line(err: str) -> str:
    errors = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


# ---- item 1 / 12: truncated and corrupt streams ------------------------------------------------

@pytest.mark.parametrize("kind", ["truncated", "corrupt"])
@pytest.mark.parametrize("ext", FORMATS)
def test_damaged_training_file_is_one_error_line_and_no_output(ext, kind, tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    bad = train / f"shard.jsonl{ext}"
    bad.write_bytes(damaged(ext, _contaminated_line() + b"\n" + _lines(20_004), kind))
    rc = _detect(["--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)), "--purify",
                  "--report-output-dir", str(tmp_path / "out"), "--cleaned-output-dir", str(tmp_path / "clean")])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert str(bad) in line and kind in line, line
    cleaned = list((tmp_path / "clean").rglob("*")) if (tmp_path / "clean").exists() else []
    assert cleaned == [], "no cleaned copy of a damaged file"


@pytest.mark.parametrize("ext", FORMATS)
def test_damaged_eval_file_stops_detect(ext, tmp_path, capsys):
    """Cut after the first frame/stream plus a few bytes: what is left decodes to whole lines, so
    only the decompressor can tell that records are missing."""
    refs = tmp_path / "refs"
    refs.mkdir()
    lines = QA_REF.read_bytes().splitlines(keepends=True)
    first, rest = b"".join(lines[: len(lines) // 2]), b"".join(lines[len(lines) // 2:])
    if ext in (".zst", ".zstd"):
        zc = zstandard.ZstdCompressor(write_checksum=True)
        blob = zc.compress(first) + zc.compress(rest)[:12]
    else:
        blob = compress(ext, first + rest)[:-12]
    bad = refs / f"refs.jsonl{ext}"
    bad.write_bytes(blob)
    train = tmp_path / "train"
    train.mkdir()
    (train / "a.jsonl").write_bytes(_contaminated_line() + b"\n")
    rc = _detect(["--training-dir", str(train), "--evals-dir", str(refs), "--report-output-dir", str(tmp_path / "o")])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2
    assert str(bad) in line and "truncated" in line, line


def test_cli_corrupt_zst_and_garbage_xz_exit_2_without_traceback(tmp_path):
    """The real command: one `Error:` line naming the file, exit code 2 (item 12)."""
    refs = _refs(tmp_path)
    for name, blob in (("a.jsonl.zst", damaged(".zst", _lines(3000), "corrupt")),
                       ("b.jsonl.xz", b"this is not xz at all\n" * 50)):
        train = tmp_path / name.split(".")[0]
        train.mkdir()
        (train / name).write_bytes(blob)
        proc = subprocess.run(decon_cmd() + ["detect", "--training-dir", str(train), "--evals-dir", str(refs),
                                             "--no-index-cache", "--worker-threads", "2"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert str(train / name) in _one_error_line(proc.stderr)


def test_skip_bad_files_skips_and_counts(tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    (train / "good.jsonl").write_bytes(_contaminated_line() + b"\n" + _lines(10))
    (train / "cut.jsonl.zst").write_bytes(damaged(".zst", _lines(20_000), "truncated"))
    (train / "bad.jsonl.xz").write_bytes(b"garbage" * 100)
    os.mkfifo(train / "pipe.jsonl")
    rc = _detect(["--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)), "--skip-bad-files", "--purify",
                  "--report-output-dir", str(tmp_path / "out"), "--cleaned-output-dir", str(tmp_path / "clean")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "Skipped unreadable training files: 3 of 4" in err
    for name in ("cut.jsonl.zst", "bad.jsonl.xz", "pipe.jsonl"):
        assert str(train / name) in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good-simple-0.80.jsonl"]
    assert [p.name for p in (tmp_path / "clean").iterdir()] == ["good.jsonl.gz"]
    assert gzip.decompress((tmp_path / "clean" / "good.jsonl.gz").read_bytes()) == _lines(10)


# ---- item 8: FIFOs never block -----------------------------------------------------------------

@pytest.mark.parametrize("where", ["training", "evals"])
def test_fifo_is_an_error_not_a_hang(where, tmp_path):
    refs = _refs(tmp_path)
    train = tmp_path / "train"
    train.mkdir()
    (train / "a.jsonl").write_bytes(_contaminated_line() + b"\n")
    fifo = (train if where == "training" else refs) / "zz.jsonl"
    os.mkfifo(fifo)
    proc = subprocess.run(decon_cmd() + ["detect", "--training-dir", str(train), "--evals-dir", str(refs),
                                         "--no-index-cache", "--report-output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    assert str(fifo) in line and "not a regular file" in line


# ---- item 9: lines without bound -------------------------------------------------------------

def test_overlong_line_is_skipped_counted_and_named(tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    good = _contaminated_line()
    long_doc = orjson.dumps({"text": "word " * 2000})
    src = train / "t.jsonl"
    src.write_bytes(b"\n".join([good, long_doc, b'{"text": "short"}', long_doc, good]) + b"\n")
    rc = _detect(["--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)), "--max-line-bytes", "5000",
                  "--purify", "--report-output-dir", str(tmp_path / "out"), "--cleaned-output-dir", str(tmp_path / "c")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"{src}: line 2 is longer than max_line_bytes" in captured.err
    assert f"{src}: line 4 is longer than max_line_bytes" in captured.err
    assert "2 line too long" in captured.err
    report = [orjson.loads(x) for x in (tmp_path / "out" / "t-simple-0.80.jsonl").read_bytes().splitlines()]
    assert sorted({r["training_line"] for r in report}) == [0, 4]
    assert gzip.decompress((tmp_path / "c" / "t.jsonl.gz").read_bytes()) == b'{"text": "short"}\n'


def test_max_line_bytes_in_config_file(tmp_path, capsys):
    train = tmp_path / "train"
    train.mkdir()
    (train / "t.jsonl").write_bytes(b'{"text": "' + b"x" * 3000 + b'"}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text("max_line_bytes: 1000\n")
    assert _detect(["--config", str(cfg), "--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)),
                    "--report-output-dir", str(tmp_path / "o")]) == 0
    assert "line 1 is longer than max_line_bytes (1,000 bytes)" in capsys.readouterr().err


def _peak_rss_kib(cmd: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``cmd`` under a fresh Python parent and return its result and the child's peak RSS."""
    wrapper = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
               "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, timeout=timeout)
    peak = [ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK ")]
    return proc, int(peak[-1].split()[1])


@pytest.mark.slow
def test_one_gigabyte_line_is_skipped_in_bounded_memory(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    big = train / "noline.jsonl"
    block = b'{"text": "' + b"abcdefgh " * (1 << 16)
    with open(big, "wb") as fh:
        for _ in range((1 << 30) // len(block)):
            fh.write(block)
    with open(train / "small.jsonl", "wb") as fh:  # a 200 MB line between two documents
        fh.write(_contaminated_line() + b"\n")
        for _ in range((200 << 20) // len(block)):
            fh.write(block)
        fh.write(b'"}\n' + _contaminated_line() + b"\n")
    proc, peak_kib = _peak_rss_kib(decon_cmd() + [
        "detect", "--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)), "--no-index-cache",
        "--worker-threads", "1", "--report-output-dir", str(tmp_path / "out")], timeout=1200)
    big.unlink()
    assert proc.returncode == 0, proc.stderr
    assert f"{big}: line 1 is longer than max_line_bytes" in proc.stderr
    assert f"{train / 'small.jsonl'}: line 2 is longer than max_line_bytes" in proc.stderr
    assert peak_kib < 600 * 1024, f"peak RSS {peak_kib} KiB"
    report = [orjson.loads(x) for x in (tmp_path / "out" / "small-simple-0.80.jsonl").read_bytes().splitlines()]
    assert sorted({r["training_line"] for r in report}) == [0, 2]


# ---- item 14: wording ----------------------------------------------------------------------------

def drop_file_permission_override() -> None:
    """preexec_fn: a root child loses CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (from its bounding set,
    so exec keeps them off), so file permissions apply to it as to any user."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unsearchable_parent_says_permission_denied(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "train.jsonl").write_bytes(_contaminated_line() + b"\n")
    refs = _refs(tmp_path)
    locked.chmod(0)
    try:
        proc = subprocess.run(decon_cmd() + ["detect", "--training-dir", str(locked / "train.jsonl"),
                                             "--evals-dir", str(refs), "--no-index-cache"],
                              capture_output=True, text=True, timeout=120, preexec_fn=drop_file_permission_override)
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "permission denied" in line.lower() and "does not exist" not in line, line


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))


def test_write_error_without_a_name_names_the_output(tmp_path):
    """A write failing for lack of space (here the file-size limit, which fails the same way and
    needs no special filesystem) names the file being written."""
    train = tmp_path / "train"
    train.mkdir()
    (train / "big.jsonl").write_bytes(b"".join(
        orjson.dumps({"text": os.urandom(300).hex()}) + b"\n" for _ in range(2000)))
    out, clean = tmp_path / "out", tmp_path / "clean"
    proc = subprocess.run(decon_cmd() + ["detect", "--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)),
                                         "--no-index-cache", "--worker-threads", "1", "--purify",
                                         "--report-output-dir", str(out), "--cleaned-output-dir", str(clean)],
                          capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size)
    assert proc.returncode == 1, proc.stderr
    assert str(clean / "big.jsonl.gz") in _one_error_line(proc.stderr)
    assert not [p for p in clean.iterdir() if p.name.endswith(".tmp")]


# ---- item 15 and item 2 (detect): temporary files ---------------------------------------------

def _purify_corpus(train: Path, files: int, lines: int) -> None:
    """Documents without the content key: scanning them is only a JSON parse, copying them is not."""
    train.mkdir()
    text = b"".join(orjson.dumps({"id": i, "blob": os.urandom(120).hex()}) + b"\n" for i in range(lines))
    for n in range(files):
        (train / f"part{n}.jsonl").write_bytes(text)


@pytest.mark.slow
def test_sigint_during_purify_leaves_no_temp_files(tmp_path):
    train, clean = tmp_path / "train", tmp_path / "clean"
    # enough files that purify still runs when the first temporary file is seen, even on a busy machine
    # (with 8, a late look could see the last file's and the run finished before the signal landed)
    _purify_corpus(train, 24, 20_000)
    proc = subprocess.Popen(decon_cmd() + ["detect", "--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)),
                                           "--no-index-cache", "--worker-threads", "2", "--purify",
                                           "--report-output-dir", str(tmp_path / "out"), "--cleaned-output-dir",
                                           str(clean)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen_tmp = False
        while proc.poll() is None and not seen_tmp:  # purify has begun once a temporary file exists
            seen_tmp = clean.is_dir() and any(p.name.endswith(".tmp") for p in clean.iterdir())
            time.sleep(0.005)
        assert seen_tmp, "purify finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)  # the parent only, as `kill -INT <pid>`
        assert proc.wait(120) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    leftovers = [p.name for p in clean.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_next_run_sweeps_temp_files_of_a_killed_run(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    (train / "part0.jsonl").write_bytes(_contaminated_line() + b"\n")
    out, clean = tmp_path / "out", tmp_path / "clean"
    out.mkdir()
    clean.mkdir()
    stale = [clean / ".part0.jsonl.gz.k2j4h6a1.tmp", out / ".part0-simple-0.80.jsonl.x9y8z7w6.tmp"]
    unrelated = clean / ".notes.txt.tmp"
    for p in stale + [unrelated]:
        p.write_bytes(b"half written")
    rc = _detect(["--training-dir", str(train), "--evals-dir", str(_refs(tmp_path)), "--purify",
                  "--report-output-dir", str(out), "--cleaned-output-dir", str(clean)])
    assert rc == 0
    assert not any(p.exists() for p in stale)
    assert unrelated.exists()
    assert (clean / "part0.jsonl.gz").exists()


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_line_reader_splits_like_a_reference_at_any_chunk_size(chunk, tmp_path, monkeypatch):
    import random

    import decon.common.data_reader as data_reader

    monkeypatch.setattr(data_reader, "_CHUNK", chunk)
    rng = random.Random(chunk)
    for case in range(30):
        lines = [b"x" * rng.choice([0, 1, 2, 5, 9, 10, 11, 40]) for _ in range(rng.randint(0, 12))]
        data = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
        src = tmp_path / f"c{case}.jsonl"
        src.write_bytes(data)
        expected = data.split(b"\n")
        if expected and expected[-1] == b"":
            expected.pop()
        expected = [None if len(x) > 10 else x for x in expected]
        with data_reader.DataFile(src) as df:
            reader = df.lines(10)
            got = list(reader)
            assert got == expected, (data, got)
            assert reader.unterminated == (bool(data) and not data.endswith(b"\n"))
            assert list(df.lines(10)) == expected  # a second pass reads from the start again


def test_zstd_skippable_frames_and_frame_variants_read_whole(tmp_path):
    import struct

    from decon.common.data_reader import DataFileError, iter_lines

    data = _lines(3000)
    skippable = struct.pack("<II", 0x184D2A53, 5) + b"12345"
    frames = [zstandard.ZstdCompressor(write_checksum=True).compress(data[:1000]),
              zstandard.ZstdCompressor(write_content_size=False).compress(data[1000:50_000]),
              zstandard.ZstdCompressor(level=19).compress(data[50_000:])]
    whole = skippable + frames[0] + skippable + frames[1] + frames[2]
    src = tmp_path / "multi.jsonl.zst"
    src.write_bytes(whole)
    assert b"".join(line + b"\n" for line in iter_lines(src)) == data
    for cut in (3, len(skippable) - 2, len(skippable) + len(frames[0]) + 6, len(whole) - 1):
        src.write_bytes(whole[:cut])
        with pytest.raises(DataFileError, match="truncated zstd stream"):
            list(iter_lines(src))
