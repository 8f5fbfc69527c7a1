"""The embedded MongoDB-wire server still rejects every duplicate key once its per-insert
_id scan is skipped for ObjectId and string _ids (devtools/mongo_wire.py)."""
from datetime import UTC, datetime

import pytest
from bson import Decimal128, ObjectId
from pymongo import ASCENDING, MongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError

from devtools.stack import free_port, start_mongo_wire, stop_process


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def db(request, tmp_path_factory):
    port = free_port()
    proc = start_mongo_wire(port, request.param, tmp_path_factory.mktemp("wire") / "db.sqlite3")
    client = MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true")
    yield client.dupes
    client.close()
    stop_process(proc)


@pytest.mark.parametrize("make_id", [ObjectId, lambda: "same-string-id"], ids=["objectid", "string"])
def test_a_repeated_id_is_rejected(db, make_id):
    collection = db[f"ids_{make_id.__name__}"]
    doc_id = make_id()
    collection.insert_one({"_id": doc_id, "n": 1})
    with pytest.raises(DuplicateKeyError):
        collection.insert_one({"_id": doc_id, "n": 2})
    assert collection.find_one({"_id": doc_id})["n"] == 1


def test_numeric_ids_that_compare_equal_are_rejected(db):
    db.numeric.insert_one({"_id": 1})
    with pytest.raises(DuplicateKeyError):
        db.numeric.insert_one({"_id": 1.0})


def test_unique_index_duplicates_are_rejected_in_bulk_inserts(db):
    db.windows.create_index([("window_key", ASCENDING)], unique=True, sparse=True)
    db.windows.insert_many([{"window_key": "s:0"}, {"window_key": "s:1"}, {"other": 1}, {"other": 2}])
    with pytest.raises(BulkWriteError) as error:
        db.windows.insert_many([{"window_key": "s:2"}, {"window_key": "s:1"}], ordered=False)
    assert [e["code"] for e in error.value.details["writeErrors"]] == [11000]
    assert db.windows.count_documents({}) == 5


def test_a_batch_reports_each_duplicate_by_its_position(db):
    """The wire server hands a command's documents to the engine as one batch: a duplicate is
    still reported by its index in the command, and the rest of an unordered batch is stored."""
    db.batch.create_index([("window_key", ASCENDING)], unique=True, sparse=True)
    db.batch.insert_one({"window_key": "b:1"})
    with pytest.raises(BulkWriteError) as error:
        db.batch.insert_many([{"window_key": f"b:{k}"} for k in (0, 1, 2, 1, 3)], ordered=False)
    assert [(e["index"], e["code"]) for e in error.value.details["writeErrors"]] == [(1, 11000), (3, 11000)]
    assert error.value.details["nInserted"] == 3
    assert sorted(d["window_key"] for d in db.batch.find()) == ["b:0", "b:1", "b:2", "b:3"]


def test_an_ordered_batch_stops_at_its_first_duplicate(db):
    db.ordered.create_index([("window_key", ASCENDING)], unique=True, sparse=True)
    db.ordered.insert_one({"window_key": "o:1"})
    with pytest.raises(BulkWriteError) as error:
        db.ordered.insert_many([{"window_key": f"o:{k}"} for k in (0, 1, 2)], ordered=True)
    assert [e["index"] for e in error.value.details["writeErrors"]] == [1]
    assert sorted(d["window_key"] for d in db.ordered.find()) == ["o:0", "o:1"]


def test_equality_on_an_indexed_objectid_finds_what_a_scan_finds(db):
    """On SQLite an equality on an ObjectId field with its own index is answered from the index
    (devtools/mongo_wire.py `_indexed_equality`); the answer must be the engine's own: scalar
    matches and arrays holding the id, never its hex string or another id.
    `copy` holds the same values without an index, so it is answered the engine's way."""
    wanted, other = ObjectId(), ObjectId()
    values = [wanted, other, [other, wanted], str(wanted), wanted, None, [other], wanted]
    db.eq.create_index([("session", ASCENDING)])
    db.eq.insert_many([{"n": n, "session": v, "copy": v} for n, v in enumerate(values)])
    db.eq.insert_one({"n": len(values)})
    indexed = sorted(d["n"] for d in db.eq.find({"session": wanted}))
    assert indexed == sorted(d["n"] for d in db.eq.find({"copy": wanted})) == [0, 2, 4, 7]
    limited = [d["n"] for d in db.eq.find({"session": wanted}).limit(2)]
    assert len(limited) == 2 and set(limited) <= {0, 2, 4, 7}
    assert sorted(db.eq.find({"session": wanted}, {"_id": 0, "n": 1}), key=lambda d: d["n"]) == [
        {"n": n} for n in (0, 2, 4, 7)]
    assert [d["n"] for d in db.eq.find({"session": wanted}).sort("n", -1)] == [7, 4, 2, 0]
    assert list(db.eq.find({"session": ObjectId()})) == []
    assert db.eq.delete_many({"session": wanted}).deleted_count == 4
    assert sorted(d["n"] for d in db.eq.find()) == [1, 3, 5, 6, 8]


def test_sqlite_answers_an_objectid_equality_without_reading_every_document(tmp_path):
    """mongoeco's own SQL for the equality ORs in a subquery per document, which makes SQLite
    read the whole collection (seconds for a session's readings among a million): its plan
    searches `documents` by (db_name, coll_name) only."""
    import asyncio
    import sqlite3

    from mongoeco.engines.semantic_core import compile_find_semantics
    from mongoeco.types import ObjectId as EngineObjectId

    from devtools.mongo_wire import build_engine

    path = tmp_path / "db.sqlite3"
    port = free_port()
    proc = start_mongo_wire(port, "sqlite", path)
    try:
        client = MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true")
        client.plan.readings.create_index([("session", ASCENDING)])
        client.plan.readings.insert_many([{"session": ObjectId()} for _ in range(20)])
        client.close()
    finally:
        stop_process(proc)

    async def compiled():
        engine = build_engine("sqlite", str(path))
        await engine.connect()
        try:
            semantics = compile_find_semantics({"session": EngineObjectId()})
            return engine._compile_read_execution_plan("plan", "readings", semantics)
        finally:
            await engine.disconnect()

    plan = asyncio.run(compiled())
    with sqlite3.connect(path) as connection:
        steps = [row[-1] for row in connection.execute(f"EXPLAIN QUERY PLAN {plan.sql}", plan.params)]
    # Every table is searched by its whole key: (db_name, coll_name) alone is the collection.
    searches = [step for step in steps if step.startswith(("SCAN", "SEARCH"))]
    assert searches and all(step.startswith("SEARCH") and step.count("=?") >= 3 for step in searches), steps


def test_queries_see_arrays_and_decimals_inserted_after_a_collection_held_none(db):
    """After an insert, the SQLite engine's facts about a collection (any arrays on a path, any
    decimals) are updated from the inserted documents instead of being measured again
    (devtools/mongo_wire.py `_feature_after_insert`): queries must still treat the new values as
    the engine's own measurement would."""
    facts = db.facts
    facts.create_index([("tags", ASCENDING)])
    facts.insert_many([{"n": n, "tags": "plain", "amount": n, "at": {"day": n}} for n in range(3)])
    # measured now: no arrays, no decimals, numbers only under `amount`
    assert [d["n"] for d in facts.find({"tags": "plain"}).sort("amount", -1)] == [2, 1, 0]
    assert [d["n"] for d in facts.find({"amount": {"$gt": 1}})] == [2]
    assert [d["n"] for d in facts.find({"at.day": 1})] == [1]
    facts.insert_one({"n": 3, "tags": ["plain", "rare"], "amount": Decimal128("1.5"), "at": [{"day": 7}]})
    assert [d["n"] for d in facts.find({"tags": "rare"})] == [3]
    assert sorted(d["n"] for d in facts.find({"tags": "plain"})) == [0, 1, 2, 3]
    assert sorted(d["n"] for d in facts.find({"amount": {"$gt": 1}})) == [2, 3]
    assert [d["n"] for d in facts.find({"at.day": 7})] == [3]
    assert [d["n"] for d in facts.find({}).sort("amount", -1)] == [2, 3, 1, 0]
    facts.insert_one({"n": 4, "tags": "plain", "amount": "text"})
    assert [d["n"] for d in facts.find({}).sort("amount", -1)][0] == 4  # strings sort after numbers


def test_sqlite_learns_collection_facts_from_an_insert_instead_of_reading_every_document(tmp_path):
    """mongoeco 4.11 forgets what it knows about a collection at every write and measures it again
    by reading every document: 300 ms per insert and per first find after one, among 50,000 readings."""
    from mongoeco import MongoClient as EngineClient

    from devtools.mongo_wire import build_engine

    engine = build_engine("sqlite", str(tmp_path / "db.sqlite3"))
    client = EngineClient(engine)
    try:
        readings = client.facts.readings
        readings.create_index([("window_key", ASCENDING)], unique=True, sparse=True)
        readings.create_index([("session", ASCENDING)])
        readings.insert_many([{"session": ObjectId(), "window_key": f"s:{n}"} for n in range(50)])
        readings.insert_one({"session": ObjectId(), "window_key": "s:50"})
        list(readings.find({"session": ObjectId()}))  # what an insert and this find ask is measured once
        statements = []
        engine._require_connection().set_trace_callback(statements.append)
        readings.insert_one({"session": ObjectId(), "window_key": "s:51"})
        assert list(readings.find({"session": ObjectId()})) == []
        assert readings.count_documents({}) == 52
    finally:
        client.close()
    scans = [s for s in statements if "FROM documents" in s and "json_" in s and "storage_key" not in s]
    assert statements and not scans, scans


def test_sqlite_finds_by_objectid_without_asking_whether_the_field_holds_decimals(tmp_path):
    """Whether a field holds decimals is measured over the whole collection the first time a
    find asks after the server starts (25 s among a million readings); an ObjectId equality
    never needs to ask, so the engine must not have measured it."""
    from mongoeco import MongoClient as EngineClient

    from devtools.mongo_wire import build_engine

    engine = build_engine("sqlite", str(tmp_path / "db.sqlite3"))
    client = EngineClient(engine)
    try:
        session = ObjectId()
        readings = client.facts.readings
        readings.create_index([("session", ASCENDING)])
        readings.insert_many([{"session": s, "n": n} for n, s in enumerate([session, ObjectId()] * 10)])
        engine._collection_features_cache.clear()  # as after a restart
        assert sorted(d["n"] for d in readings.find({"session": session})) == list(range(0, 20, 2))
        assert sorted(d["n"] for d in readings.find({"n": {"$gte": 18}})) == [18, 19]
        asked = {key[2].rpartition(":")[0] for key in engine._collection_features_cache}
    finally:
        client.close()
    assert "tagged_type:n" in asked and "tagged_type:session" not in asked, asked


def test_collection_facts_after_an_insert():
    """What an insert tells of each kind of fact; anything else is measured again (_ABSENT)."""
    from datetime import UTC, datetime

    from bson import DBRef

    from devtools.mongo_wire import _ABSENT, _feature_after_insert

    plain = [{"n": 1, "tags": "a", "at": {"day": 2}, "ref": {"x": 1}, "when": 3.5}]
    assert _feature_after_insert("top_level_array:tags", False, plain) is False
    assert _feature_after_insert("top_level_array:tags", True, plain) is True  # stays true
    assert _feature_after_insert("top_level_array:tags", False, [{"tags": ["a", "b"]}]) is True
    assert _feature_after_insert("traverses_array:at.day", False, plain) is False
    assert _feature_after_insert("traverses_array:at.day", False, [{"at": [{"day": 7}]}]) is True
    assert _feature_after_insert("tagged_type:n:decimal128_public", False, plain) is False  # bson's Decimal128
    assert _feature_after_insert("tagged_type:n:decimal128_public", False, [{"n": Decimal128("1.5")}]) is True
    assert _feature_after_insert("tagged_type:n:decimal", False, [{"n": Decimal128("1.5")}]) is False
    assert _feature_after_insert("traverses_dbref:ref.x", False, plain) is False
    assert _feature_after_insert("traverses_dbref:ref.x", False, [{"ref": DBRef("c", 1)}]) is True
    assert _feature_after_insert("uniform_scalar_sort_type:when", "number", plain) is _ABSENT
    assert _feature_after_insert("uniform_scalar_sort_type:when", "number",
                                 [{"when": datetime.now(UTC)}]) is False
    assert _feature_after_insert("uniform_scalar_sort_type:when", "number", [{}]) is False  # missing: not uniform
    assert _feature_after_insert("comparison_mismatch:n:number", False, plain) is _ABSENT


# Every kind of value a leaf can be, each as the codec must store it (or refuse it).
CODEC_VALUES = [
    "text", "", 0.5, float("nan"), float("-inf"), True, False, None, 0, -1, 2**31 - 1, 2**31, -(2**31) - 1,
    2**63 - 1, -(2**63), 2**63, -(2**63) - 1, b"\x00raw", ObjectId("6b130ec5fd5000393bf15182"),
    Decimal128("1.5"), {1, 2}, datetime(2026, 12, 4, 19, 0, 0, 123456, tzinfo=UTC),
    type("Text", (str,), {})("a str subclass"), type("Number", (float,), {})(2.5),
]


def _outcome(function, value):
    try:
        return "returns", function(value)
    except Exception as error:  # noqa: BLE001 - the kind of refusal is what is compared
        return "raises", type(error)


@pytest.mark.parametrize("value", CODEC_VALUES, ids=repr)
def test_scalar_shortcuts_encode_and_validate_as_mongoeco_does(value):
    """devtools.mongo_wire's codec shortcuts give what mongoeco's own encode and validation give,
    for every kind of leaf value, alone, in a document, in a list, and under a non-string key."""
    from mongoeco.core import codec

    from devtools import mongo_wire

    mongo_wire.encode_scalars_directly()
    for shaped in (value, {"v": value, "nested": {"p": value}}, [value, 1.0], {1: value}):
        assert _outcome(codec.validate_bson_value, shaped) == _outcome(mongo_wire._original_validate, shaped)
        expected = _outcome(mongo_wire._original_encode, shaped)
        actual = _outcome(codec.DocumentCodec.encode, shaped)
        if expected[0] == "returns" and isinstance(value, float) and value != value:  # NaN is not equal to itself
            assert repr(actual) == repr(expected)
        else:
            assert actual == expected


def _types(value):
    """The types of a value and of everything in it, in order."""
    if isinstance(value, dict):
        return [type(value), *((key, _types(item)) for key, item in value.items())]
    if isinstance(value, list | tuple):
        return [type(value), *(_types(item) for item in value)]
    return type(value)


@pytest.mark.parametrize("value", CODEC_VALUES, ids=repr)
def test_the_internal_form_shortcut_converts_as_mongoeco_does(value):
    """devtools.mongo_wire's to_internal gives what mongoeco's own gives (the same values of the same
    types), or refuses what it refuses, for every kind of leaf value in the shapes a command's
    documents take, and for documents only mongoeco's codec converts (its marker as a key, tuples)."""
    from mongoeco.core import codec

    from devtools import mongo_wire

    mongo_wire.encode_scalars_directly()
    shapes = ({"v": value, "nested": {"p": value, "list": [value, {"q": value}]}}, {"v": value, "n": 3},
              {"$mongoeco": {"type": "datetime", "value": value}}, {"t": (value, 1)}, [value], value)
    for shaped in shapes:
        expected = _outcome(mongo_wire._original_to_internal, shaped)
        actual = _outcome(codec.DocumentCodec.to_internal, shaped)
        assert repr(actual) == repr(expected)
        if expected[0] == "returns":
            assert _types(actual[1]) == _types(expected[1])


def test_the_decode_shortcut_decodes_what_bson_gives_as_mongoeco_does():
    """devtools.mongo_wire's decode shortcut gives, for every kind of value a command can carry
    once bson has decoded it, what mongoeco's own decode_wire_value gives."""
    import re

    from bson import BSON, Binary, Code, DBRef, Int64, MaxKey, MinKey, Regex, Timestamp

    from devtools import mongo_wire

    mongo_wire.decode_plain_directly()
    leaves = [v for v in CODEC_VALUES if not isinstance(v, set) and not (isinstance(v, int) and abs(v) >= 2**63)]
    leaves += [Int64(7), Binary(b"\x01" * 16, 4), Binary(b"x", 0), Regex("^a", re.I), Timestamp(1, 2), Code("x"),
               MinKey(), MaxKey(), DBRef("c", ObjectId("6b130ec5fd5000393bf15182"))]
    document = {"leaves": leaves, "nested": {str(i): {"v": leaf} for i, leaf in enumerate(leaves)}}
    decoded = BSON.encode(document).decode()
    actual, expected = mongo_wire._decode_plain_directly(decoded), mongo_wire._original_decode(decoded)
    assert repr(actual) == repr(expected)
    assert [type(v) for v in actual["leaves"]] == [type(v) for v in expected["leaves"]]


def test_the_copy_shortcut_copies_documents_as_deepcopy_does():
    """devtools.mongo_wire's copy of the documents mongoeco copies on insert gives what
    copy.deepcopy gives, and shares no dict or list with the original."""
    import copy

    from mongoeco.types import ObjectId as EngineObjectId

    from devtools import mongo_wire

    mongo_wire.copy_plain_directly()
    leaves = [*CODEC_VALUES, EngineObjectId("6b130ec5fd5000393bf15182"), (1, [2])]
    document = {"leaves": leaves, "nested": {str(i): {"v": [leaf, {"deeper": leaf}]} for i, leaf in enumerate(leaves)}}
    copied = mongo_wire._copy_plain_directly(document)
    assert repr(copied) == repr(copy.deepcopy(document))
    assert [type(v) for v in copied["leaves"]] == [type(v) for v in leaves]

    def containers(value):
        if isinstance(value, dict | list | set | tuple):
            yield value
            for item in value.values() if isinstance(value, dict) else value:
                yield from containers(item)

    originals = {id(c) for c in containers(document) if not isinstance(c, tuple)}
    assert not originals & {id(c) for c in containers(copied) if not isinstance(c, tuple)}


def test_the_memory_engines_index_keys_are_mongoecos_own():
    """devtools.mongo_wire's memory engine keys a document in an index on top-level scalar fields by
    the values themselves: for every kind of value, absent fields, arrays, sub-documents, dotted and
    compound index fields, the keys (and a compound index's refusal of two arrays) are those
    mongoeco's own engine gives."""
    from mongoeco.core.codec import DocumentCodec
    from mongoeco.engines import MemoryEngine
    from mongoeco.types import ObjectId as EngineObjectId

    from devtools import mongo_wire

    engine = mongo_wire.build_engine("memory", None)
    leaves = [v for v in CODEC_VALUES if not isinstance(v, set) and not (isinstance(v, int) and abs(v) >= 2**63)]
    leaves += [EngineObjectId("6b130ec5fd5000393bf15182"), [1, "a", [2]], [], {"x": 1, "y": [3]}, {}]
    indexes = (["v"], ["missing"], ["v.x"], ["v.0"], ["v", "w"], ["w", "v"], ["v", "v.y"], ["v", "missing"])
    for leaf in leaves:
        for other in (1.5, [4, 5]):
            for document in ({"v": leaf, "w": other}, DocumentCodec.to_internal({"v": leaf, "w": other})):
                for fields in indexes:
                    expected = MemoryEngine._index_keys(engine, document, fields)
                    assert repr(engine._index_keys(document, fields)) == repr(expected)
                    for field in fields:
                        expected = MemoryEngine._index_value(engine, document, field)
                        assert repr(engine._index_value(document, field)) == repr(expected)
                    index = {"fields": fields}
                    expected = _outcome(lambda d: MemoryEngine._validate_compound_multikey_shape(engine, d, index),
                                        document)
                    assert _outcome(lambda d: engine._validate_compound_multikey_shape(d, index), document) == expected
