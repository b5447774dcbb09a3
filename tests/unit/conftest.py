"""Fixtures shared by the unit tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from rewrite_detector_server.storage import vector_index


@pytest.fixture
def held_regrow(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Stops a background IVF regrow right after it starts (before it decodes anything) until released,
    so a test can write while it runs. Yields (started, release)."""
    started, release = threading.Event(), threading.Event()
    real = vector_index._training_sample

    def holding(n: int, nlist: int) -> np.ndarray | None:
        if threading.current_thread().name == "ivf-regrow":
            started.set()
            assert release.wait(30)
        return real(n, nlist)

    monkeypatch.setattr(vector_index, "_training_sample", holding)
    yield started, release
    release.set()
