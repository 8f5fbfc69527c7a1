"""make bench-runtime: the runtime a platform installs, measured. Builds a fresh virtualenv from
requirements.txt alone (no pip cache, wheels from this machine's package index), and reports
the install time, the size on disk, the size as a gzip'd tarball (a slug's measure; Heroku
allows 500 MB compressed) and the distributions; saves bench/results/runtime.json.

    python -m bench.runtime [--venv /tmp/mood-mirror-runtime] [--keep]
"""
import argparse
import gzip
import json
import os
import shutil
import tarfile
import time
from pathlib import Path

from devtools.runtime_venv import build

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "runtime.json"
TARGET_MB, TARGET_S = 600, 90


class _Counter:
    """A write-only file that counts the bytes written to it."""

    def __init__(self):
        self.size = 0

    def write(self, data):
        self.size += len(data)
        return len(data)

    def flush(self):
        pass


def compressed_mb(path):
    counter = _Counter()
    with gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=6) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        tar.add(path, arcname="venv")
    return round(counter.size / 1e6, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default="/tmp/mood-mirror-runtime")
    parser.add_argument("--keep", action="store_true", help="keep the virtualenv afterwards")
    args = parser.parse_args(argv)
    figures = build(args.venv)
    result = {"install_seconds": figures["install_seconds"], "size_mb": figures["size_mb"],
              "compressed_mb": compressed_mb(args.venv), "distributions": len(figures["distributions"]),
              "largest": largest(Path(args.venv)), "load_average": [round(x, 2) for x in os.getloadavg()],
              "cpus": os.cpu_count(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not args.keep:
        shutil.rmtree(args.venv)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"size {result['size_mb']} MB (target < {TARGET_MB}), install {result['install_seconds']} s "
          f"(target < {TARGET_S})")


def largest(venv, count=6):
    """The biggest installed packages, MB."""
    from devtools.runtime_venv import size_bytes

    site = next(venv.glob("lib/python3*/site-packages"))
    sizes = {entry.name: size_bytes(entry) if entry.is_dir() else entry.stat().st_size for entry in site.iterdir()}
    return {name: round(size / 1e6, 1) for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:count]}


if __name__ == "__main__":
    main()
