"""Where the data shipped inside the package lives: the bundled reference set and default configs.

The files are package data of ``decon`` (``decon/data/``) and are found through
``importlib.resources``, so a checkout (editable install), a wheel, pipx, a container image and a
Ray ``runtime_env`` all see the same files. A checkout's top-level ``fixtures/reference`` and
``config/*.yaml`` are symlinks into ``decon/data``; nothing here ever looks at the source tree.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The default configs shipped with the package (``decon/data/config/``).
CONFIG_NAMES = ("default.yaml", "evals.yaml", "orchestration.yaml")


def data_path(*parts: str) -> Path:
    """A path inside the package's ``data`` folder.

    decon is always installed as plain files (pip never installs zipped), so the resource is a
    real path; were it inside a zip, the path returned does not exist and the caller's usual
    "does not exist" error names it.
    """
    return Path(str(resources.files("decon").joinpath("data", *parts)))


def bundled_reference_dir() -> Path:
    """The bundled reference set (gsm8k, mmlu, agi_eval)."""
    return data_path("reference")


def bundled_config(name: str) -> Path:
    """One of the default configs (``CONFIG_NAMES``)."""
    if name not in CONFIG_NAMES:
        raise ValueError(f"no bundled config named {name!r} (have: {', '.join(CONFIG_NAMES)})")
    return data_path("config", name)
