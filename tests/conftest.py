"""Test-wide settings: keep the index cache and progress output out of the user's environment."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_index_cache(tmp_path_factory: pytest.TempPathFactory):
    mp = pytest.MonkeyPatch()
    mp.setenv("DECON_CACHE_DIR", str(tmp_path_factory.mktemp("decon-index-cache")))
    mp.setenv("DECON_QUIET", "1")
    yield
    mp.undo()
