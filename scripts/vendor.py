"""Vendor front-end packages from the npm registry into app/static/vendor (make vendor).

Each package keeps its package.json (version) and licence next to the files the pages load,
so the dashboard and the API docs need no CDN and no build step.
"""
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "app" / "static" / "vendor"
PACKAGES = {
    "swagger-ui-dist@5.35.0": ["swagger-ui.css", "swagger-ui-bundle.js"],
    "chart.js@4.6.1": ["dist/chart.umd.min.js"],
    "socket.io-client@4.8.4": ["dist/socket.io.esm.min.js", "dist/socket.io.min.js"],
}
KEPT_ALWAYS = ["package.json", "LICENSE", "LICENSE.md", "license"]


def vendor(spec, files, workdir):
    out = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", workdir],
                         check=True, capture_output=True, text=True)
    tarball = Path(workdir) / json.loads(out.stdout)[0]["filename"]
    name = spec.rsplit("@", 1)[0]
    target = VENDOR / name
    shutil.rmtree(target, ignore_errors=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(workdir, filter="data")
    package = Path(workdir) / "package"
    for rel in files + [f for f in KEPT_ALWAYS if (package / f).exists()]:
        dest = target / Path(rel).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(package / rel, dest)
    shutil.rmtree(package)
    print(f"vendored {spec} -> {target.relative_to(VENDOR.parent.parent.parent)}")


def main():
    for spec, files in PACKAGES.items():
        with tempfile.TemporaryDirectory() as workdir:
            vendor(spec, files, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
