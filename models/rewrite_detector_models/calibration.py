"""The fitted detection thresholds, shipped as package data next to the model they were fitted for."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

CALIBRATION_FILE = "calibration.json"


def load_calibration() -> dict[str, Any]:
    """The calibration document: `alignment` and `verdict` parameter groups plus how they were fitted."""
    text = resources.files("rewrite_detector_models").joinpath(CALIBRATION_FILE).read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document
