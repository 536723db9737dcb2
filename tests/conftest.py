"""Suite-wide test set-up; the helpers themselves live in kernel.testing for plugin authors too."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

logging.getLogger("alembic").setLevel(logging.WARNING)
logging.getLogger("httpx").setLevel(logging.WARNING)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    return root
