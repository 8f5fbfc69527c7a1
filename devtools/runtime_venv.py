"""A fresh virtualenv with requirements.txt alone: what a platform installs for the Procfile's
processes. bench.runtime measures it (size, install time); tests/test_lean_runtime.py runs the
stack from it."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAINING_ONLY = ("tensorflow", "keras", "scikit-learn", "librosa", "opensmile", "matplotlib", "scipy")


def build(path, python=None):
    """Create a virtualenv at `path` (replacing one there) and install requirements.txt into it
    without pip's cache, as a platform's first build does; returns its figures."""
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    started = time.monotonic()
    subprocess.run([python or sys.executable, "-m", "venv", str(path)], check=True)
    pip = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-cache-dir",
                          "--disable-pip-version-check", "-r", str(ROOT / "requirements.txt")],
                         capture_output=True, text=True)
    if pip.returncode:
        raise RuntimeError(f"pip install -r requirements.txt failed:\n{pip.stderr[-3000:]}")
    seconds = time.monotonic() - started
    return {"install_seconds": round(seconds, 1), "size_mb": round(size_bytes(path) / 1e6, 1),
            "distributions": installed(path)}


def size_bytes(path):
    """Disk used under `path`, as du counts it (allocated blocks, hard links once)."""
    seen, total = set(), 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            stat = os.lstat(os.path.join(root, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def installed(path):
    """{distribution name (lower case): version} of the virtualenv at `path`."""
    out = subprocess.run([str(Path(path) / "bin" / "python"), "-m", "pip", "list", "--format=freeze",
                          "--disable-pip-version-check"], check=True, capture_output=True, text=True).stdout
    return dict(line.lower().split("==", 1) for line in out.splitlines() if "==" in line)
