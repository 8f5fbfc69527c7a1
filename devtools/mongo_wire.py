"""Embedded MongoDB-wire server (mongoeco) for development and tests.

No MongoDB binary can be installed on the target machines (ARCHITECTURE.md, decision 6);
mongoeco speaks the wire protocol, so the app uses real pymongo connections either way.
Run: python -m devtools.mongo_wire --engine sqlite --path var/mongo.sqlite3 --port 27017
"""
import argparse
import asyncio
import signal
import threading
from dataclasses import replace
from datetime import datetime

from bson import ObjectId
from mongoeco._types._bson_objectid import normalize_object_id
from mongoeco.core.bson_scalars import INT64_MAX, INT64_MIN, normalize_utc_bson_datetime
from mongoeco.core.codec import DocumentCodec, _InternalBsonArray, _InternalBsonDocument
from mongoeco.types import ObjectId as EngineObjectId

from app.runtime import freeze_startup_objects, freeze_survivors_of_full_collections


def _plain_id(document) -> bool:
    """An _id whose stored key is exact: no other value can equal it (unlike 1 and 1.0)."""
    return isinstance(document.get("_id"), (ObjectId, str))


async def _insert_as_batch(self, spec, *, session=None):
    """mongoeco's wire `insert` command, handing its documents to the engine as one batch.

    mongoeco 4.11's wire server inserts a command's documents one `insert_one` at a time: every
    document pays the whole write path (and, on SQLite, its own transaction), so a bulk load ran at
    a few hundred documents a second (bench/api.py). Its own `insert_many` hands the engine the
    batch and reports each failed document (a duplicate window key) by its index, as the wire
    reply needs. A command it refuses while preparing the batch, before storing any of it (a
    document it cannot encode: TypeError, ValueError), goes the original way, which reports such a
    document as a write error.
    """
    from mongoeco.api._async._database_admin_write_commands import _write_command_result
    from mongoeco.api._async._write_command_validation import write_command_acknowledged
    from mongoeco.api._command_bson import command_boolean
    from mongoeco.errors import BulkWriteError
    from mongoeco.types import WriteCommandResult, WriteErrorEntry

    admin = self._admin
    documents = admin._normalize_insert_documents(spec.get("documents"))
    if len(documents) < BATCH_FROM:
        return await _one_at_a_time(self, spec, session=session)
    collection = admin._database.get_collection(admin._require_collection_name(spec.get("insert"), "insert"))
    bypass = command_boolean(spec.get("bypassDocumentValidation", False), "bypassDocumentValidation", numeric=True)
    acknowledged = write_command_acknowledged(spec, dialect=admin._mongodb_dialect.key)
    try:
        result = await collection.insert_many(documents, ordered=admin._normalize_ordered_from_command(
            spec.get("ordered")), bypass_document_validation=bypass, session=session)
        count, errors = len(result.inserted_ids), None
    except BulkWriteError as error:
        count = error.details["nInserted"]
        errors = [WriteErrorEntry(index=e["index"], errmsg=e["errmsg"], code=e.get("code"),
                                  details={k: v for k, v in e.items() if k not in ("index", "errmsg", "code", "op")})
                  for e in error.details["writeErrors"]]
    except (TypeError, ValueError):
        return await _one_at_a_time(self, spec, session=session)
    return _write_command_result(WriteCommandResult(count=count, write_errors=errors), acknowledged=acknowledged)


_one_at_a_time = None
# Fewer documents go the original way: `insert_many` copies each document twice more, which cost
# a single insert (a reading posted to the API) about 0.5 ms more of the server's CPU.
BATCH_FROM = 2


def batch_wire_inserts():
    """Install _insert_as_batch in mongoeco's wire server (this process only)."""
    global _one_at_a_time
    from mongoeco.api._async._database_admin_write_commands import DatabaseAdminWriteCommandService

    if _one_at_a_time is None:
        _one_at_a_time = DatabaseAdminWriteCommandService.command_insert
        DatabaseAdminWriteCommandService.command_insert = _insert_as_batch


_PLAIN_SCALARS = frozenset({str, float, bool, type(None)})
# Leaves that validate_bson_value accepts without a check of their own (it range-checks numbers only).
_VALID_AS_IS = frozenset({datetime, ObjectId, EngineObjectId})
_MARKER = DocumentCodec._MARKER
_original_encode = None
_original_validate = None
_original_to_internal = None


def _plain(value):
    """Whether DocumentCodec.encode returns `value` as it is and validate_bson_value accepts it
    (judged by exact type: a subclass goes mongoeco's way)."""
    kind = type(value)
    return kind in _PLAIN_SCALARS or (kind is int and INT64_MIN <= value <= INT64_MAX)


def _plain_document(value):
    """Whether `value` is a dict with string keys, none of them the codec's own marker (whose
    documents only mongoeco's codec converts)."""
    return type(value) is dict and _MARKER not in value and all(type(key) is str for key in value)


def _encode_scalars_directly(data):
    """mongoeco's DocumentCodec.encode, returning a plain scalar at once: the original checks it
    against some twenty BSON types and validates it again (its container was validated whole
    already), and validation wraps every number in a BSON scalar object just to range-check it.
    With a reading's two dozen numbers that was a third of the wire server's insert CPU
    (py-spy, 100 live streams). A plain document (a dict with string keys, none of them the
    codec's own marker) is encoded value by value without validating its whole subtree first at
    every level: each value is validated where it is encoded (plain ones need none), so the same
    values are refused with the same errors."""
    if _plain(data):
        return data
    if _plain_document(data):
        return {key: _encode_scalars_directly(value) for key, value in data.items()}
    return _original_encode(data)


def _validate_scalars_directly(value):
    """mongoeco's validate_bson_value, with plain scalars and in-range integers accepted without
    wrapping them, and datetimes and ObjectIds, which it has no check for; anything else is
    checked by the original, one value at a time."""
    pending = [value]
    while pending:
        current = pending.pop()
        if _plain(current) or type(current) in _VALID_AS_IS:
            continue
        if isinstance(current, dict):
            if not all(type(key) is str for key in current):  # the original's test, on the rare miss
                _original_validate({key: None for key in current})
            pending.extend(current.values())
        elif isinstance(current, (list, tuple)):
            pending.extend(current)
        else:
            _original_validate(current)


class _NotPlain(Exception):
    """A value that only mongoeco's own codec converts."""


def _internal_tree(value):
    """What mongoeco's DocumentCodec.to_internal makes of a plain value: its dicts and lists as
    the engine's immutable documents and arrays, datetimes at BSON's UTC milliseconds, ObjectIds
    as the engine's; _NotPlain for anything else."""
    if _plain_document(value):
        return _InternalBsonDocument({key: _internal_tree(item) for key, item in value.items()})
    kind = type(value)
    if kind is list:
        return _InternalBsonArray(_internal_tree(item) for item in value)
    if _plain(value):
        return value
    if kind is datetime:
        return normalize_utc_bson_datetime(value)
    if kind is ObjectId or kind is EngineObjectId:
        return normalize_object_id(value)
    raise _NotPlain


def _to_internal_directly(data):
    """mongoeco's DocumentCodec.to_internal for a plain document in one walk: the original encodes
    it to tagged JSON-like values, decodes that back and then wraps it, three walks over every
    document a command carries (an inserted reading's cost 48 against 11 µs; probe). Anything else
    goes the original way."""
    if type(data) is dict:
        try:
            return _internal_tree(data)
        except _NotPlain:
            pass
    return _original_to_internal(data)


def encode_scalars_directly():
    """Install the functions above in mongoeco's document codec (this process only)."""
    global _original_encode, _original_validate, _original_to_internal
    from mongoeco.core import codec

    if _original_encode is None:
        _original_encode, _original_validate = codec.DocumentCodec.encode, codec.validate_bson_value
        _original_to_internal = codec.DocumentCodec.to_internal
        codec.DocumentCodec.encode = staticmethod(_encode_scalars_directly)
        codec.DocumentCodec.to_internal = staticmethod(_to_internal_directly)
        codec.validate_bson_value = _validate_scalars_directly


_original_decode = None
# What bson's decoder gives that mongoeco's decode_wire_value returns unchanged (exact types: bson's
# Int64 is an int subclass, which it converts).
_DECODED_AS_IS = _PLAIN_SCALARS | {int, datetime}


def _decode_plain_directly(value):
    """mongoeco's decode_wire_value, returning plain values at once and walking plain documents and
    lists itself: the original tries some fifteen BSON types on every leaf of every command, a
    tenth of the wire server's CPU at 100 live streams (py-spy)."""
    kind = type(value)
    if kind in _DECODED_AS_IS:
        return value
    if kind is dict:
        return {key: _decode_plain_directly(item) for key, item in value.items()}
    if kind is list:
        return [_decode_plain_directly(item) for item in value]
    return _original_decode(value)


def decode_plain_directly():
    """Install _decode_plain_directly in mongoeco's wire protocol decoder (this process only)."""
    global _original_decode
    from mongoeco.wire import protocol

    if _original_decode is None:
        _original_decode = protocol.decode_wire_value
        protocol.decode_wire_value = _decode_plain_directly


_original_deepcopy = None
# Values that deepcopy returns as they are.
_IMMUTABLE = _DECODED_AS_IS | {bytes, ObjectId, EngineObjectId}


def _copy_plain_directly(value, memo=None):
    """copy.deepcopy for the documents mongoeco copies on every insert (twice as it prepares
    the batch, once more for a change stream's record): dicts and lists are copied and their
    immutable leaves kept, as deepcopy keeps them, without its memo and its dispatch per value;
    anything else (and any memo given) goes to deepcopy. A document decoded from the wire is a
    tree (no value reached twice), so the copies are the same."""
    kind = type(value)
    if memo is not None:
        return _original_deepcopy(value, memo)
    if kind is dict:
        return {key: _copy_plain_directly(item) for key, item in value.items()}
    if kind is list:
        return [_copy_plain_directly(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return _original_deepcopy(value)


def copy_plain_directly():
    """Install _copy_plain_directly as the deepcopy of mongoeco's insert path and memory engine
    (this process only)."""
    global _original_deepcopy
    import copy

    from mongoeco.api._async import _collection_insert
    from mongoeco.engines import memory

    if _original_deepcopy is None:
        _original_deepcopy = copy.deepcopy
        _collection_insert.deepcopy = memory.deepcopy = _copy_plain_directly


# What the SQLite plan selects, with its table named (the index lookup joins another table).
_SELECTED = {"document": "documents.document", "storage_key, document": "documents.storage_key, documents.document"}


def _indexed_equality(engine, db_name, coll_name, semantics, plan, select_clause, hint):
    """(sql, params) that answer `{field: ObjectId}` from the field's single-field index, or None.

    mongoeco 4.11 translates such a find into `(json_extract(...) = ?) OR EXISTS (multikey entries
    of the document)`; the OR keeps SQLite from using any index, so it reads every document of the
    collection: finding one session's readings took 40 ms among 50,000 readings and seconds among
    a million (docs/BENCHMARKS.md). Only `find_one` uses the index. The documents equal to an
    ObjectId are those whose scalar entry in the index is that ObjectId, plus those holding it in
    an array (the index's multikey entries): both are index lookups.
    """
    from mongoeco.core.query_plan import EqualsCondition
    from mongoeco.engines._sqlite_read_fast_path_runtime import find_scalar_fast_path_index
    from mongoeco.types import ObjectId as EngineObjectId

    query = semantics.query_plan
    if not (plan.use_sql and plan.strategy == "sql" and hint is None and select_clause in _SELECTED
            and isinstance(query, EqualsCondition) and type(query.value) is EngineObjectId and "." not in query.field
            and semantics.sort is None and not semantics.skip and semantics.collation is None
            and semantics.text_query is None):
        return None
    index = find_scalar_fast_path_index(engine, db_name, coll_name, query.field)
    collection_id = engine._lookup_collection_id(engine._require_connection(), db_name, coll_name)
    if index is None or collection_id is None:
        return None
    (element_type, element_key), = engine._multikey_signatures_for_query_value(query.value)
    entry = (collection_id, index["name"], engine._multikey_type_score(element_type), element_key)
    lookups = [f"SELECT storage_key FROM scalar_index_entries INDEXED BY "
               f"{engine._quote_identifier(index['scalar_physical_name'])} WHERE collection_id = ? AND "
               "index_name = ? AND type_score = ? AND element_key = ?"]
    params = [db_name, coll_name, *entry]
    if index.get("multikey_physical_name"):
        lookups.append(f"SELECT storage_key FROM multikey_entries INDEXED BY "
                       f"{engine._quote_identifier(index['multikey_physical_name'])} WHERE collection_id = ? "
                       "AND index_name = ? AND type_score = ? AND element_key = ?")
        params.extend(entry)
    sql = (f"SELECT {_SELECTED[select_clause]} FROM documents WHERE documents.db_name = ? AND "
           f"documents.coll_name = ? AND documents.storage_key IN ({' UNION '.join(lookups)})")
    if semantics.limit is not None:
        sql += f" LIMIT {int(semantics.limit)}"
    return sql, tuple(params)


_INSERTING = threading.local()  # the collection an insert on this thread writes to, and its documents
_ABSENT = object()
_ARRAY = object()
_GENERAL = object()
# Values whose index key mongoeco takes from the value alone (no array or sub-document to walk).
_INDEXED_AS_IS = _DECODED_AS_IS | {ObjectId, EngineObjectId}


def _top_level_scalar(document, field):
    """The value of a top-level field if it is a scalar of _INDEXED_AS_IS, _ABSENT where the document
    lacks the field, else _GENERAL (a dotted path, an array, a sub-document, another kind of value or
    of document: for mongoeco's own path walk)."""
    if "." in field or type(document) not in (dict, _InternalBsonDocument):
        return _GENERAL
    value = document.get(field, _ABSENT)
    return value if value is _ABSENT or type(value) in _INDEXED_AS_IS else _GENERAL


def _stored_at(document, field):
    """What SQLite's JSON path for `field` (mongoeco's `json_path_for_field`) finds in `document` as
    the engine stores it: the JSON value (plain dicts, lists and scalars; every other value is a
    tagged object), or _ABSENT. Only the field's top-level value is encoded, as the engine encodes it."""
    from mongoeco.core.codec import DocumentCodec

    head, *rest = field.split(".")
    if head.isdigit() or head not in document:
        return _ABSENT
    value = DocumentCodec.encode(document[head])
    for part in rest:
        if part.isdigit():
            if type(value) is not list or int(part) >= len(value):
                return _ABSENT
            value = value[int(part)]
        elif type(value) is dict and part in value:
            value = value[part]
        else:
            return _ABSENT
    return value


def _stored_kind(value):
    """_ARRAY for a stored array, the type mongoeco tagged a stored value with, or None."""
    from mongoeco.core.codec import DocumentCodec

    if type(value) is list:
        return _ARRAY
    return value[DocumentCodec._MARKER][DocumentCodec._TYPE] if DocumentCodec._is_tagged_value(value) else None


def _feature_after_insert(feature: str, cached, documents):
    """The collection feature `feature` (a key of mongoeco's SQLite collection-features cache, whose
    value was `cached`) once `documents` are added, or _ABSENT if it must be measured again.

    The facts of the form "some document has X" (an array on a path, a value of a tagged type) stay
    true when documents are added, and turn true exactly when an added one has X in the form the
    engine stores it (`_stored_at`); a uniform scalar type for sorting is lost when an added value
    is no plain number, string or boolean. Everything else is measured again, as mongoeco does
    after every write. A document of the batch that was refused (a duplicate) can only make a
    fact true or a sort type lost: the slower, general path, never a wrong answer."""
    from mongoeco.engines.sqlite_query import path_array_prefixes

    kind, _, field = feature.partition(":")
    if kind == "uniform_scalar_sort_type":
        if any(type(_stored_at(doc, field)) not in (int, float, str, bool) for doc in documents):
            return False
        return _ABSENT
    if kind == "tagged_type":
        field, _, wanted = field.rpartition(":")
        paths = [field]
    elif kind == "top_level_array":
        paths, wanted = [field], _ARRAY
    elif kind == "traverses_array":
        paths, wanted = path_array_prefixes(field), _ARRAY
    elif kind == "traverses_dbref":
        parts = field.split(".")
        paths, wanted = [".".join(parts[:n]) for n in range(1, len(parts))], "dbref"
    else:
        return _ABSENT
    return cached is True or any(_stored_kind(_stored_at(doc, path)) == wanted
                                 for doc in documents for path in paths)


def build_engine(engine: str, path: str | None):
    """The engine, minus the costs that grow with the collection: on SQLite, finding the
    documents equal to an ObjectId reads them all (`_indexed_equality`), and:

    mongoeco 4.11 checks a document inserted on its own for an equal _id by decoding every
    document of the collection, even when the _id's exact key has already been looked up;
    the wire server inserts documents one by one, so each insert got slower as the collection
    grew (memory engine: 2 ms at 500 documents, 24 ms at 4,000; SQLite 12 → 107 ms; measured
    by bench/mongo_wire.py). The scan only matters for numeric _ids, where 1 and 1.0 collide:
    for ObjectId and string _ids the exact-key lookup before it is the whole check.

    mongoeco 4.11's SQLite engine caches facts about each collection that its planner and its
    unique-index checks ask about (does any document hold an array on this path, a decimal, a
    DBRef), forgets them at every write to the collection, and measures each again by reading every
    document: an insert into the readings (unique window keys) and the first find after it cost
    300 ms among 50,000 readings, seconds among a million. After an insert the facts are updated
    from the inserted documents instead (`_feature_after_insert`); other writes still forget them.
    A find by an ObjectId does not ask whether the field holds decimals at all.
    """
    if engine == "memory":
        from mongoeco.engines import MemoryEngine

        class Memory(MemoryEngine):
            def _ensure_unique_indexes(self, db_name, coll_name, candidate, **options):
                if options.get("check_id_storage") and _plain_id(candidate):
                    options["scan_payload_id"] = False
                return super()._ensure_unique_indexes(db_name, coll_name, candidate, **options)

            # An index on top-level fields that hold scalars (or are absent) keys a document by those
            # scalars' keys, and no array can make a compound one invalid: mongoeco's general path
            # walks (dotted paths, arrays, DBRefs) cost more than the keys, for each of a reading's
            # seven indexes.
            def _scalar_key(self, document, field):
                """The key of a top-level scalar field (None where absent), else _GENERAL."""
                value = _top_level_scalar(document, field)
                return value if value is _GENERAL else None if value is _ABSENT else self._index_equality_key(value)

            def _index_value(self, document, field):
                key = self._scalar_key(document, field)
                return super()._index_value(document, field) if key is _GENERAL else key

            def _index_keys(self, document, fields):
                key = self._scalar_key(document, fields[0]) if len(fields) == 1 else _GENERAL
                return super()._index_keys(document, fields) if key is _GENERAL else {(key,)}

            def _validate_compound_multikey_shape(self, document, index):
                if any(_top_level_scalar(document, field) is _GENERAL for field in index["fields"]):
                    super()._validate_compound_multikey_shape(document, index)

        return Memory()
    from mongoeco.engines import SQLiteEngine

    class SQLite(SQLiteEngine):
        def _insert_document_sync(self, db_name, coll_name, document, *args, **kwargs):
            return self._inserting((db_name, coll_name, [document]), super()._insert_document_sync, db_name,
                                   coll_name, document, *args, **kwargs)

        def _insert_documents_sync(self, db_name, coll_name, documents, *args, **kwargs):
            return self._inserting((db_name, coll_name, documents), super()._insert_documents_sync, db_name,
                                   coll_name, documents, *args, **kwargs)

        @staticmethod
        def _inserting(target, insert, *args, **kwargs):
            _INSERTING.target = target
            try:
                return insert(*args, **kwargs)
            finally:
                _INSERTING.target = None

        def _invalidate_collection_features_cache(self, db_name=None, coll_name=None):
            target = getattr(_INSERTING, "target", None)
            if target is None or target[:2] != (db_name, coll_name):
                return super()._invalidate_collection_features_cache(db_name, coll_name)
            documents = target[2]
            cache = self._collection_features_cache
            for key in [key for key in cache if key[:2] == (db_name, coll_name)]:
                value = _feature_after_insert(key[2], cache[key], documents)
                if value is _ABSENT:
                    del cache[key]
                else:
                    cache[key] = value

        def _validate_document_against_unique_indexes(self, db_name, coll_name, document, **options):
            if not options.get("skip_id_check") and _plain_id(document):
                options["scan_payload_id"] = False
            return super()._validate_document_against_unique_indexes(db_name, coll_name, document, **options)

        def _plan_requires_python_for_decimal_numeric(self, db_name, coll_name, plan):
            from mongoeco.core.query_plan import EqualsCondition
            from mongoeco.types import ObjectId as EngineObjectId

            # An ObjectId equals no number, decimal or not: no need to ask whether the field holds
            # decimals, which reads the whole collection the first time after the server starts.
            if isinstance(plan, EqualsCondition) and type(plan.value) is EngineObjectId:
                return False
            return super()._plan_requires_python_for_decimal_numeric(db_name, coll_name, plan)

        def _compile_read_execution_plan(self, db_name, coll_name, semantics, *, select_clause="document",
                                         hint=None):
            plan = super()._compile_read_execution_plan(db_name, coll_name, semantics, select_clause=select_clause,
                                                        hint=hint)
            indexed = _indexed_equality(self, db_name, coll_name, semantics, plan, select_clause, hint)
            return plan if indexed is None else replace(plan, sql=indexed[0], params=indexed[1])

    return SQLite(path or "var/mongo.sqlite3")


async def serve(engine: str, path: str | None, host: str, port: int, ready=None) -> None:
    from mongoeco.wire import AsyncMongoEcoProxyServer

    batch_wire_inserts()
    encode_scalars_directly()
    decode_plain_directly()
    copy_plain_directly()
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
