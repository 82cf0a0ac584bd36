"""What the extraction tests share: Tesseract's presence, and reading dotted paths."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest


def require_tesseract() -> None:
    """Skip without Tesseract on a developer machine; fail in CI, which must install it."""
    if shutil.which("tesseract"):
        return
    if os.environ.get("CI"):
        pytest.fail("tesseract is missing: .ci/run installs tesseract-ocr (-fra, -eng)")
    pytest.skip("tesseract is not installed (apt-get install tesseract-ocr{,-fra,-eng})")


def at(data: Any, path: str) -> Any:
    """The value at a dotted path such as ``debtor.contacts[0].email`` (None when absent)."""
    current = data
    for part in path.replace("[", ".").replace("]", "").split("."):
        if isinstance(current, list):
            index = int(part)
            current = current[index] if index < len(current) else None
        elif isinstance(current, dict):
            current = current.get(part)
        else:
            return None
    return current
