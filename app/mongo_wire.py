"""Embedded MongoDB-wire server (mongoeco) for development and tests.

No MongoDB binary can be installed on the target machines (ARCHITECTURE.md, decision 6);
mongoeco speaks the wire protocol, so the app uses real pymongo connections either way.
Run: python -m app.mongo_wire --engine sqlite --path var/mongo.sqlite3 --port 27017
"""
import argparse
import asyncio
import signal


def build_engine(engine: str, path: str | None):
    if engine == "memory":
        from mongoeco.engines import MemoryEngine

        return MemoryEngine()
    from mongoeco.engines import SQLiteEngine

    return SQLiteEngine(path or "var/mongo.sqlite3")


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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("memory", "sqlite"), default="sqlite")
    parser.add_argument("--path", default="var/mongo.sqlite3")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.engine, args.path, args.host, args.port))


if __name__ == "__main__":
    main()
