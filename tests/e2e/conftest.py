"""Fixtures of the end-to-end suite.

Everything here is skipped unless SLOTHFUL_E2E_URL names a running WebUI started with --api and this
extension installed, e.g.

    SLOTHFUL_E2E_URL=http://127.0.0.1:7861 .venv/bin/python -m pytest -q tests/e2e

Optional: SLOTHFUL_E2E_MODEL (a checkpoint title or name to switch to first; default: the loaded
one), SLOTHFUL_E2E_FAMILY (sd1 / sdxl, default from the checkpoint name), SLOTHFUL_E2E_STEPS
(default 4), SLOTHFUL_E2E_TIMEOUT (seconds per request, default 1200), SLOTHFUL_E2E_MATRIX (a
JSON-lines file the neighbour matrix is appended to; `tests/e2e/matrix_table.py` prints it).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from .client import STEPS

HERE = Path(__file__).resolve().parent
URL = os.environ.get("SLOTHFUL_E2E_URL", "").strip()


def pytest_collection_modifyitems(config, items):
    if URL:
        return
    skip = pytest.mark.skip(reason="end-to-end: set SLOTHFUL_E2E_URL to a running WebUI to run these")
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def webui():
    from .client import WebUI
    w = WebUI(URL)
    print(f"\n[e2e] {URL}: {w.describe()}")
    w.alive()  # warm-up: the first generation after a start may differ (model load, lazy patches)
    yield w
    total = sum(s for s, _, _ in w.log)
    for seconds, status, what in w.log:
        print(f"[e2e]   {seconds:6.1f} s  HTTP {status}  {what}")
    print(f"\n[e2e] {w.describe()}: {len(w.log)} generation requests, {total:.0f} s in generation requests")


@pytest.fixture(scope="session")
def baseline(webui):
    """The plain image: no alwayson entry for this extension."""
    return webui.generate(what="baseline (extension absent)")


class Matrix:
    """One JSON line per (neighbour, method) case, appended to SLOTHFUL_E2E_MATRIX when it is set."""

    def __init__(self, path: str, webui):
        self.path, self.webui = path, webui

    def write(self, **record):
        if not self.path:
            return
        w = self.webui
        line = {"host": w.host, "model": w.model, "family": w.family, "size": f"{w.width}x{w.height}",
                "steps": STEPS, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


@pytest.fixture(scope="session")
def matrix(webui):
    return Matrix(os.environ.get("SLOTHFUL_E2E_MATRIX", "").strip(), webui)
