"""The embedded MongoDB-wire server's insert cost as a collection grows.

Starts `python -m devtools.mongo_wire` on each engine and inserts streamed-reading-sized documents
(two per insert_many, with the readings' unique sparse window_key index) up to 4,000, printing
the mean milliseconds per insert for each step of 500 documents. Saves
bench/results/mongo_wire.json.

    python -m bench.mongo_wire [--steps 8]
"""
import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from bson import ObjectId
from pymongo import ASCENDING, MongoClient
from tqdm import tqdm

from devtools.stack import free_port, mongo_wire_command

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "mongo_wire.json"
STEP = 500


def measure(engine, steps):
    port = free_port()
    with tempfile.TemporaryDirectory() as var:
        server = subprocess.Popen(mongo_wire_command(port, engine, f"{var}/db.sqlite3"), cwd=ROOT,
                                  stdout=subprocess.DEVNULL)
        try:
            client = MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=30000)
            readings = client.bench.readings
            readings.create_index([("window_key", ASCENDING)], unique=True, sparse=True)
            per_step = []
            for _ in tqdm(range(steps), desc=engine, unit="step"):
                started = time.perf_counter()
                for i in range(STEP // 2):
                    session = ObjectId()
                    readings.insert_many([
                        {"window_key": f"{session}:{i}", "probabilities": {"calm": 0.4, "sad": 0.6}},
                        {"window_key": f"{session}:{i + 1}", "probabilities": {"calm": 0.7, "sad": 0.3}},
                    ])
                per_step.append(round((time.perf_counter() - started) / (STEP // 2) * 1000, 2))
            client.close()
        finally:
            server.terminate()
            server.wait()
    return {"engine": engine, "documents_per_step": STEP, "ms_per_insert_by_step": per_step}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args(argv)
    results = [measure(engine, args.steps) for engine in ("memory", "sqlite")]
    for r in results:
        print(f"{r['engine']:>7}: ms per 2-document insert, each step {STEP} documents further: "
              f"{r['ms_per_insert_by_step']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({"results": str(RESULTS.relative_to(ROOT))}))


if __name__ == "__main__":
    main()
