"""The bundled data: one copy, inside the package, found with importlib.resources."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import decon
from decon.common.config import BUNDLED_EVALS_NAME, DetectionConfig, load_config_file, resolve_evals_dir
from decon.common.resources import CONFIG_NAMES, bundled_config, bundled_reference_dir
from decon.detect import index_cache as ic

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DATA = Path(decon.__file__).resolve().parent / "data"


def test_bundled_set_is_package_data():
    ref = bundled_reference_dir()
    assert ref.resolve() == PACKAGE_DATA / "reference"
    assert ref.is_dir() and not ref.is_symlink()
    files = sorted(p.name for p in ref.iterdir())
    assert len(files) == 20 and all(name.endswith(".jsonl.gz") for name in files)
    assert {name.split("_")[0] for name in files} == {"agi", "gsm8k", "mmlu"}
    assert resolve_evals_dir(BUNDLED_EVALS_NAME) == ref


def test_bundled_configs_are_package_data():
    for name in CONFIG_NAMES:
        path = bundled_config(name)
        assert path.resolve() == PACKAGE_DATA / "config" / name
        assert path.is_file() and not path.is_symlink()
    assert load_config_file(bundled_config("default.yaml")).evals_dir == BUNDLED_EVALS_NAME
    with pytest.raises(ValueError, match="no bundled config named 'other.yaml'"):
        bundled_config("other.yaml")


@pytest.mark.parametrize("top_level, packaged", [
    ("fixtures/reference", "reference"),
    ("fixtures/NOTICES-upstream-data.txt", "NOTICES-upstream-data.txt"),
    *[(f"config/{name}", f"config/{name}") for name in CONFIG_NAMES],
])
def test_checkout_top_level_points_at_the_package_copy(top_level, packaged):
    """The design card's fixtures/ and config/ stay; they are relative symlinks, not second copies."""
    link = REPO / top_level
    assert link.is_symlink(), f"{top_level} must be a symlink into decon/data"
    assert not os.path.isabs(os.readlink(link))
    assert link.resolve() == PACKAGE_DATA / packaged


def test_bundled_set_by_name_or_through_the_symlink_shares_a_cache_key():
    by_name = ic.cache_key(DetectionConfig(evals_dir=BUNDLED_EVALS_NAME))
    assert by_name == ic.cache_key(DetectionConfig(evals_dir=str(REPO / "fixtures" / "reference")))
    assert by_name != ic.cache_key(DetectionConfig(evals_dir=str(REPO / "fixtures" / "test-reference")))
