"""Camera-simulator fixtures: the real face pipeline (models from the shared cache) and a render cache."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from kernel.settings import Settings


@pytest.fixture(scope="session")
def sim_cache() -> Path:
    """Renders are megabytes: kept outside the repository and reused across runs (keyed by hash)."""
    env = os.environ.get("DUALCHECK_SIM_CACHE")
    return Path(env) if env else Path(tempfile.gettempdir()) / "dualcheck-sim-cache"


@pytest.fixture(scope="session")
def pipeline(models_dir: Path):
    from vision.pipeline import FacePipeline

    return FacePipeline.from_settings(Settings(models_dir=models_dir, model_pack="yunet_sface", match_threshold=None))
