"""The shared `layer_metrics.py` (the figures Strata is judged by), loaded for the tools here."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

#: Where `layer_metrics.py` is found when not given: the shared folder beside the checkout.
DEFAULT_METRICS = Path(__file__).resolve().parents[3] / "shared" / "eval" / "layer_metrics.py"


def load(path: Path) -> ModuleType:
    """The metrics module at `path`, or a one-line exit naming it."""
    spec = importlib.util.spec_from_file_location("layer_metrics", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise SystemExit(f"cannot load the metrics from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
