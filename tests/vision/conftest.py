"""Vision fixtures: one real pipeline per session (models from the shared cache), test images."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kernel.settings import Settings


@pytest.fixture(scope="session")
def vision_settings(models_dir: Path) -> Settings:
    return Settings(models_dir=models_dir, model_pack="yunet_sface", match_threshold=None)


@pytest.fixture(scope="session")
def pipeline(vision_settings):
    from vision.pipeline import FacePipeline

    return FacePipeline.from_settings(vision_settings)


@pytest.fixture(scope="session")
def load(testdata: Path):
    cache: dict[str, np.ndarray] = {}

    def _load(rel: str) -> np.ndarray:
        if rel not in cache:
            img = cv2.imread(str(testdata / rel))
            assert img is not None, rel
            cache[rel] = img
        return cache[rel].copy()

    return _load


@pytest.fixture(scope="session")
def id_photo(load, pipeline) -> np.ndarray:
    """A ~102x126 ID-card-style crop of obama.jpg: the face fills most of the picture."""
    img = load("faces/obama.jpg")
    f = pipeline.analyze(img)[0].face
    cx, cy = (f.x1 + f.x2) / 2, (f.y1 + f.y2) / 2
    side = max(f.width, f.height) * 1.1
    crop = img[int(cy - side * 0.62): int(cy + side * 0.62), int(cx - side / 2): int(cx + side / 2)]
    return cv2.resize(crop, (102, 126), interpolation=cv2.INTER_AREA)


def pytest_configure(config):
    # insightface 2.1's norm_crop calls a deprecated scikit-image API; vision/align.py silences it at
    # import, but pytest resets warning filters per test.
    config.addinivalue_line("filterwarnings", "ignore:.*`estimate` is deprecated:FutureWarning")
