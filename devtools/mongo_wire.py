"""Embedded MongoDB-wire server (mongoeco) for development and tests.

No MongoDB binary can be installed on the target machines (ARCHITECTURE.md, decision 6);
mongoeco speaks the wire protocol, so the app uses real pymongo connections either way.
Run: python -m devtools.mongo_wire --engine sqlite --path var/mongo.sqlite3 --port 27017
"""
import argparse
import asyncio
import signal

from bson import ObjectId

from app.runtime import freeze_startup_objects, freeze_survivors_of_full_collections


def _plain_id(document) -> bool:
    """An _id whose stored key is exact: no other value can equal it (unlike 1 and 1.0)."""
    return isinstance(document.get("_id"), (ObjectId, str))


def build_engine(engine: str, path: str | None):
    """The engine, minus one cost that grows with the collection.

    mongoeco 4.11 checks a document inserted on its own for an equal _id by decoding every
    document of the collection, even when the _id's exact key has already been looked up;
    the wire server inserts documents one by one, so each insert got slower as the collection
    grew (memory engine: 2 ms at 500 documents, 24 ms at 4,000; SQLite 12 → 107 ms; measured
    by bench/mongo_wire.py). The scan only matters for numeric _ids, where 1 and 1.0 collide:
    for ObjectId and string _ids the exact-key lookup before it is the whole check.
    """
    if engine == "memory":
        from mongoeco.engines import MemoryEngine

        class Memory(MemoryEngine):
            def _ensure_unique_indexes(self, db_name, coll_name, candidate, **options):
                if options.get("check_id_storage") and _plain_id(candidate):
                    options["scan_payload_id"] = False
                return super()._ensure_unique_indexes(db_name, coll_name, candidate, **options)

        return Memory()
    from mongoeco.engines import SQLiteEngine

    class SQLite(SQLiteEngine):
        def _validate_document_against_unique_indexes(self, db_name, coll_name, document, **options):
            if not options.get("skip_id_check") and _plain_id(document):
                options["scan_payload_id"] = False
            return super()._validate_document_against_unique_indexes(db_name, coll_name, document, **options)

    return SQLite(path or "var/mongo.sqlite3")


async def serve(engine: str, path: str | None, host: str, port: int, ready=None) -> None:
    from mongoeco.wire import AsyncMongoEcoProxyServer

    server = AsyncMongoEcoProxyServer(engine=build_engine(engine, path), host=host, port=port)
    address = await server.start()
    print(f"mongo-wire listening on {address.uri} ({engine})", flush=True)
    if ready is not None:
        ready(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (RuntimeError, ValueError):  # not in the main thread (tests run it in one)
            pass
    try:
        await stop.wait()
    finally:
        await server.close()


def settle_heap():
    freeze_startup_objects()
    freeze_survivors_of_full_collections()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("memory", "sqlite"), default="sqlite")
    parser.add_argument("--path", default="var/mongo.sqlite3")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.engine, args.path, args.host, args.port, ready=lambda _address: settle_heap()))


if __name__ == "__main__":
    main()
