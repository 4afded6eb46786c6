"""The wheel `cargo xtask wheel` builds installs with pip into a fresh virtual environment and
works there, from any folder: its models and ONNX Runtime come with it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLE


def test_the_wheel_installs_and_runs_in_a_fresh_environment(tmp_path):
    wheel = os.environ.get("STRATA_WHEEL")
    if not wheel:
        pytest.skip("STRATA_WHEEL names no wheel (cargo xtask test sets it)")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_") and k not in ("ORT_DYLIB_PATH", "PYTHONPATH")}
    script = (
        "import strata, sys; r = strata.analyze(sys.argv[1]); "
        "print(strata.runtime_summary()); print(sorted(round(p['period_s'], 2) for p in r['patterns']))"
    )
    done = subprocess.run([str(python), "-c", script, str(EXAMPLE)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    summary, periods = done.stdout.strip().splitlines()
    assert "ONNX Runtime 1.31.1" in summary
    assert 0.5 in eval(periods) and 4.0 in eval(periods), periods
    batch = subprocess.run([str(venv / "bin" / "strata-batch"), "--help"], capture_output=True, text=True, env=env)
    assert batch.returncode == 0 and "--address" in batch.stdout
