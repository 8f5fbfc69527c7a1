"""The embedded MongoDB-wire server's insert cost as a collection grows, and its CPU per reading.

Starts `python -m devtools.mongo_wire` on each engine and inserts streamed-reading-sized documents
(two per insert_many, with the readings' unique sparse window_key index) up to 4,000, printing
the mean milliseconds per insert for each step of 500 documents. Then, on each engine, the
server's CPU time per reading stored as a worker stores them: documents built as
app/readings/store.py builds them, three per unordered insert_many, into a collection with the
readings' indexes that holds 3,000 already. Saves bench/results/mongo_wire.json.

    python -m bench.mongo_wire [--steps 8] [--readings 1500]
"""
import argparse
import json
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
from bson import ObjectId
from pymongo import ASCENDING, MongoClient
from tqdm import tqdm

from devtools.stack import free_port, mongo_wire_command

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "mongo_wire.json"
STEP = 500
# A worker's batch of streamed windows, and the readings stored before the CPU is measured.
BATCH = 3
STORED_BEFORE = 3000


@contextmanager
def wire_server(engine):
    """(the server's process, a client of it), on a fresh store."""
    port = free_port()
    with tempfile.TemporaryDirectory() as var:
        server = subprocess.Popen(mongo_wire_command(port, engine, f"{var}/db.sqlite3"), cwd=ROOT,
                                  stdout=subprocess.DEVNULL)
        try:
            client = MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=30000)
            yield server, client
            client.close()
        finally:
            server.terminate()
            server.wait()


def measure(engine, steps):
    with wire_server(engine) as (_, client):
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
    return {"engine": engine, "documents_per_step": STEP, "ms_per_insert_by_step": per_step}


def reading_documents(count, rng):
    """Readings of streamed windows as the worker stores them (app/readings/store.py), from 100 users."""
    from app.readings.store import _document
    from ml.inference import reading
    from ml.params import NUM_CLASSES

    users = [(ObjectId(), ObjectId()) for _ in range(100)]
    documents = []
    for i in range(count):
        owner, session = users[rng.integers(len(users))]
        documents.append(_document(owner, session, reading(rng.dirichlet(np.ones(NUM_CLASSES))), "stream",
                                   {"window_key": f"{session}:{i}", "window_start": float(i), "window_end": i + 3.0,
                                    "model_version": "bench"}))
    return documents


def cpu_per_reading(engine, count):
    """The server's CPU time (user and system) per reading, in µs, over `count` readings stored
    BATCH at a time after STORED_BEFORE."""
    from app.models import EmotionReading

    documents = reading_documents(STORED_BEFORE + count, np.random.default_rng(0))
    with wire_server(engine) as (server, client):
        readings = client.bench.readings
        for spec in EmotionReading._meta["index_specs"]:
            readings.create_index(spec["fields"], **{k: v for k, v in spec.items() if k != "fields"})
        for i in range(0, STORED_BEFORE, BATCH):
            readings.insert_many(documents[i:i + BATCH], ordered=False)
        before = sum(psutil.Process(server.pid).cpu_times()[:2])
        for i in tqdm(range(STORED_BEFORE, STORED_BEFORE + count, BATCH), desc=f"{engine} CPU", unit="insert"):
            readings.insert_many(documents[i:i + BATCH], ordered=False)
        spent = sum(psutil.Process(server.pid).cpu_times()[:2]) - before
    return round(spent / count * 1e6)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--readings", type=int, default=1500, help="readings whose server CPU is measured")
    args = parser.parse_args(argv)
    results = [measure(engine, args.steps) | {"server_cpu_us_per_reading": cpu_per_reading(engine, args.readings),
                                              "readings_per_insert": BATCH}
               for engine in ("memory", "sqlite")]
    for r in results:
        print(f"{r['engine']:>7}: ms per 2-document insert, each step {STEP} documents further: "
              f"{r['ms_per_insert_by_step']}; server CPU per reading stored {BATCH} at a time: "
              f"{r['server_cpu_us_per_reading']} µs")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({"results": str(RESULTS.relative_to(ROOT))}))


if __name__ == "__main__":
    main()
