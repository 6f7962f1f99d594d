"""A real (non-editable) install works like the checkout.

The wheel is built from a clean copy of the project (so no stale ``build/`` folder can smuggle files
into it and the checkout stays untouched) and installed with ``pip install --no-deps --no-index``
into a fresh venv created without pip and without system site-packages. The venv gets its
*dependencies* (numpy, tiktoken, fastapi, ...) from this test run's venv through a ``.pth`` line:
that keeps the test fast and offline, while ``decon`` itself can only come from the wheel. A
``.pth`` line only adds a folder to ``sys.path``; the ``.pth`` files inside that folder (among them
the editable install's import hook that points at the checkout) are not run, and the venv's own
site-packages comes first. ``test_installed_decon_is_the_wheel`` checks exactly that.

Every command runs from a temporary working directory outside the checkout, with a private HOME
and index cache.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import requests

import decon
from decon.common.resources import CONFIG_NAMES, bundled_reference_dir

pytestmark = pytest.mark.slow  # real clusters, servers or browsers: `make test` runs it, `make test-fast` does not

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "fixtures" / "training" / "demo.jsonl"
#: (training_line, eval_key, eval_instance_index) of the bundled-set matches in demo.jsonl
KNOWN_MATCHES = {(0, "mmlu", 36), (1, "gsm8k", 7)}
_COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                      ".pytest_cache", ".ruff_cache", "bench-data", "tests")


@dataclass
class Install:
    wheel: Path
    venv: Path
    site_packages: Path
    env: dict[str, str]
    home: Path

    @property
    def decon(self) -> str:
        return str(self.venv / "bin" / "decon")

    def run(self, args: list[str], cwd: Path, exe: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([exe or self.decon, *args], cwd=cwd, env=self.env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return proc


def _check(cmd: list[str], **kw) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _build_wheel(root: Path) -> Path:
    src = root / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=_COPY_IGNORE)
    wheels = root / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--no-index", "--verbose", "--wheel-dir", str(wheels), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (root / "build.log").write_text(proc.stdout + proc.stderr)
    (wheel,) = wheels.glob("decon-*.whl")
    return wheel


def _fresh_venv(path: Path) -> tuple[Path, Path]:
    venv.EnvBuilder(with_pip=False, symlinks=True, system_site_packages=False).create(path)
    python = path / "bin" / "python"
    site = Path(_check([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip())
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "_decon_test_deps.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    return python, site


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Install:
    root = tmp_path_factory.mktemp("install")
    wheel = _build_wheel(root)
    python, site = _fresh_venv(root / "venv")
    _check([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
            "--quiet", wheel])
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "DECON_", "XDG_"))}
    env.update(HOME=str(home), DECON_CACHE_DIR=str(root / "index-cache"), DECON_QUIET="1",
               PATH=f"{root / 'venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    return Install(wheel=wheel, venv=root / "venv", site_packages=site, env=env, home=home)


@pytest.fixture
def cwd(tmp_path) -> Path:
    d = tmp_path / "cwd"
    d.mkdir()
    return d


def _inside(path: str | Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


# ---- the wheel ------------------------------------------------------------------------------------

def test_wheel_holds_the_bundled_set_and_configs(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    reference = sorted(p.name for p in bundled_reference_dir().iterdir() if p.is_file())
    assert len(reference) >= 20
    for name in reference:
        assert f"decon/data/reference/{name}" in names
    for name in CONFIG_NAMES:
        assert f"decon/data/config/{name}" in names
    assert "decon/data/NOTICES-upstream-data.txt" in names
    assert "decon/data/NOTICES-third-party.txt" in names
    assert not any(n.startswith(("fixtures/", "config/", "tests/")) for n in names)


def test_build_has_no_license_warning_and_metadata_names_the_license(installed):
    log = (installed.wheel.parent.parent / "build.log").read_text()
    assert "project.license" not in log and "adding license file" in log, log[-3000:]
    with zipfile.ZipFile(installed.wheel) as wheel:
        (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        text = wheel.read(metadata).decode()
        names = wheel.namelist()
    assert "License-Expression: Apache-2.0" in text
    assert "License-File: LICENSE" in text and "License-File: decon/data/NOTICES-upstream-data.txt" in text
    assert "License-File: decon/data/NOTICES-third-party.txt" in text
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Apache License" in (REPO / "LICENSE").read_text()


def test_installed_decon_is_the_wheel(installed, cwd):
    code = ("import decon, decon.common.resources as r, importlib.metadata as m; "
            "print(decon.__file__); print(r.bundled_reference_dir()); print(m.version('decon'))")
    out = installed.run(["-c", code], cwd, exe=str(installed.venv / "bin" / "python")).stdout.split("\n")
    module, reference, version = out[:3]
    assert _inside(module, installed.site_packages) and not _inside(module, REPO)
    assert _inside(reference, installed.site_packages) and Path(reference).is_dir()
    assert version == decon.__version__
    assert installed.run(["--version"], cwd).stdout.strip() == f"decon {decon.__version__}"
    assert not (installed.site_packages / "fixtures").exists()


# ---- the commands, from a temp cwd ----------------------------------------------------------------

def _matches(report_dir: Path) -> set[tuple[int, str, int]]:
    found = set()
    for path in report_dir.rglob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            rec = orjson.loads(line)
            found.add((rec["training_line"], rec["eval_key"], rec["eval_instance_index"]))
    return found


def _reports(report_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(report_dir).as_posix(): p.read_bytes() for p in sorted(report_dir.rglob("*.jsonl"))}


def test_detect_with_bundled_set_finds_known_match_and_shares_the_index_cache(installed, cwd):
    shutil.copytree(DEMO.parent, cwd / "train", ignore=lambda _d, names: [n for n in names if n != DEMO.name])
    args = ["detect", "--training-dir", "train", "--report-output-dir", "out", "--worker-threads", "1"]
    first = installed.run(args, cwd)
    reference = installed.site_packages / "decon" / "data" / "reference"
    assert f"Using default evaluation directory: {reference}" in first.stderr
    assert "Reference index built and saved to cache" in first.stderr
    assert _matches(cwd / "out") == KNOWN_MATCHES

    # The checkout's decon, same cache: the index built from site-packages is found by content.
    args[args.index("out")] = "out-checkout"
    checkout = installed.run(args, cwd, exe=str(Path(sys.executable).parent / "decon"))
    assert f"Using default evaluation directory: {bundled_reference_dir()}" in checkout.stderr
    assert "Reference index loaded from cache" in checkout.stderr
    assert _reports(cwd / "out") == _reports(cwd / "out-checkout") != {}


def test_evals_lists_the_bundled_set_where_it_is_installed(installed, cwd):
    out = installed.run(["evals"], cwd).stdout
    reference = installed.site_packages / "decon" / "data" / "reference"
    assert out.splitlines()[0] == f"Reference set: {reference}"
    checkout = installed.run(["evals"], cwd, exe=str(Path(sys.executable).parent / "decon")).stdout
    assert checkout.splitlines()[0] == f"Reference set: {bundled_reference_dir()}"
    assert out.splitlines()[1:] == checkout.splitlines()[1:]
    for suite in ("agi_eval", "gsm8k", "mmlu"):
        assert suite in out
    assert "Eval suites: 3" in out


def test_evals_download_reads_the_bundled_evals_config(installed, cwd):
    out = installed.run(["evals", "--download", "--eval", "agi_eval", "--output-dir", "refs"], cwd).stdout
    assert f"Config: {installed.site_packages / 'decon' / 'data' / 'config' / 'evals.yaml'}" in out
    written = sorted(p.name for p in (cwd / "refs").iterdir())
    assert written and all(name.startswith("agi_eval_") for name in written)
    for name in written:
        assert (cwd / "refs" / name).read_bytes() == (bundled_reference_dir() / name).read_bytes()


def _wait_listening(proc: subprocess.Popen, log: Path, deadline: float) -> str:
    marker = "Server listening on http://"
    while time.monotonic() < deadline and proc.poll() is None:
        text = log.read_text(errors="replace")
        if marker in text:
            return "http://" + text.split(marker, 1)[1].split()[0]
        time.sleep(0.1)
    raise AssertionError(f"server did not start:\n{log.read_text(errors='replace')}")


def _wait_health_ok(url: str, proc: subprocess.Popen, deadline: float) -> dict:
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        try:
            resp = requests.get(f"{url}/health", timeout=5)
        except requests.ConnectionError:
            resp = None
        if resp is not None and resp.status_code == 200:
            return resp.json()
        time.sleep(0.1)
    raise AssertionError("/health never said ok")


def test_server_health_ok_and_a_job_completes(installed, cwd):
    shutil.copy(DEMO, cwd / DEMO.name)
    log = cwd.parent / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [installed.decon, "server", "--host", "127.0.0.1", "--port", "0", "--worker-threads", "1",
             "--report-output-dir", "reports"],
            cwd=cwd, env=dict(installed.env, PYTHONUNBUFFERED="1"), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        url = _wait_listening(proc, log, deadline)
        assert url.startswith("http://127.0.0.1:")
        health = _wait_health_ok(url, proc, deadline)
        assert health["status"] == "ok"
        assert health["report_output_dir"] == str(cwd / "reports")
        job = requests.post(f"{url}/submit", json={"file_path": str(cwd / DEMO.name)}, timeout=10).json()
        while (status := requests.get(f"{url}/status/{job['job_id']}", timeout=10).json())["status"] \
                not in ("completed", "failed"):
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        assert status["status"] == "completed", status
        assert _matches(Path(status["output_path"]).parent) == KNOWN_MATCHES
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
