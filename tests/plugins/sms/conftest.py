"""A fake SMS message API (``sms_api``, token ``TOKEN``) on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_sms import TOKEN, FakeSms


@pytest.fixture
def sms_api() -> Iterator[FakeSms]:
    with FakeSms(token=TOKEN) as fake:
        yield fake
