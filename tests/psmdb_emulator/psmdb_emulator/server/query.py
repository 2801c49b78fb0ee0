"""The subset of MongoDB's query language the collection and its tests use: filters, updates, projection, sort."""

from __future__ import annotations

import copy
import datetime
import re
from typing import Any

from bson import ObjectId
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.timestamp import Timestamp

from .errors import CommandError, bad_value

_MISSING = object()


def _type_rank(value: Any) -> int:
    # BSON comparison order (https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/).
    if isinstance(value, MinKey):
        return 0
    if value is None or value is _MISSING:
        return 1
    if isinstance(value, bool):
        return 8
    if isinstance(value, int | float):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, dict):
        return 4
    if isinstance(value, list):
        return 5
    if isinstance(value, bytes):
        return 6
    if isinstance(value, ObjectId):
        return 7
    if isinstance(value, datetime.datetime):
        return 9
    if isinstance(value, Timestamp):
        return 10
    if isinstance(value, MaxKey):
        return 12
    return 11


def sort_key(value: Any) -> tuple[Any, ...]:
    """A Python key that orders values like BSON does."""
    rank = _type_rank(value)
    if rank == 4:
        return (rank, tuple((k, sort_key(v)) for k, v in value.items()))
    if rank == 5:
        return (rank, tuple(sort_key(v) for v in value))
    if rank == 9:
        as_utc = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return (rank, as_utc.timestamp())
    if rank == 10:
        return (rank, value.time, value.inc)
    if rank in (0, 1, 12):
        return (rank, 0)
    if rank == 11:
        return (rank, repr(value))
    return (rank, value)


def compare(left: Any, right: Any) -> int:
    lk, rk = sort_key(left), sort_key(right)
    return (lk > rk) - (lk < rk)


def get_path(doc: Any, path: str) -> Any:
    current = doc
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part, _MISSING)
        elif isinstance(current, list) and part.isdigit():
            index = int(part)
            current = current[index] if index < len(current) else _MISSING
        else:
            return _MISSING
        if current is _MISSING:
            return _MISSING
    return current


def _candidates(value: Any) -> list[Any]:
    """A field that holds an array matches when the array itself or any element matches."""
    if isinstance(value, list):
        return [value, *value]
    return [value]


def _equals(value: Any, target: Any) -> bool:
    if target is None:
        return value is _MISSING or value is None or (isinstance(value, list) and None in value)
    return any(_type_rank(c) == _type_rank(target) and compare(c, target) == 0 for c in _candidates(value))


def _operator_matches(value: Any, operator: str, operand: Any) -> bool:
    if operator == "$eq":
        return _equals(value, operand)
    if operator == "$ne":
        return not _equals(value, operand)
    if operator in ("$gt", "$gte", "$lt", "$lte"):
        if value is _MISSING:
            return False
        wanted = {"$gt": (1,), "$gte": (0, 1), "$lt": (-1,), "$lte": (-1, 0)}[operator]
        return any(_type_rank(c) == _type_rank(operand) and compare(c, operand) in wanted for c in _candidates(value))
    if operator == "$in":
        return any(_equals(value, item) for item in operand)
    if operator == "$nin":
        return not any(_equals(value, item) for item in operand)
    if operator == "$exists":
        return (value is not _MISSING) == bool(operand)
    if operator == "$regex":
        if value is _MISSING:
            return False
        pattern = operand.pattern if hasattr(operand, "pattern") else operand
        return any(isinstance(c, str) and re.search(pattern, c) for c in _candidates(value))
    if operator == "$not":
        return not _value_matches(value, operand)
    if operator == "$size":
        return isinstance(value, list) and len(value) == operand
    raise bad_value(f"unknown operator: {operator}")


def _value_matches(value: Any, condition: Any) -> bool:
    if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition):
        return all(_operator_matches(value, op, operand) for op, operand in condition.items() if op != "$options")
    if hasattr(condition, "pattern") and hasattr(condition, "flags"):  # bson Regex or re.Pattern
        return _operator_matches(value, "$regex", condition)
    return _equals(value, condition)


def matches(doc: dict[str, Any], query: dict[str, Any] | None) -> bool:
    if not query:
        return True
    for key, condition in query.items():
        if key == "$and":
            if not all(matches(doc, sub) for sub in condition):
                return False
        elif key == "$or":
            if not any(matches(doc, sub) for sub in condition):
                return False
        elif key == "$nor":
            if any(matches(doc, sub) for sub in condition):
                return False
        elif key == "$comment":
            continue
        elif key.startswith("$"):
            raise bad_value(f"unknown top level operator: {key}")
        elif not _value_matches(get_path(doc, key), condition):
            return False
    return True


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    current: Any = doc
    for part in parts[:-1]:
        if isinstance(current, list) and part.isdigit():
            current = current[int(part)]
            continue
        current = current.setdefault(part, {})
    if isinstance(current, list) and parts[-1].isdigit():
        current[int(parts[-1])] = value
    else:
        current[parts[-1]] = value


def _unset_path(doc: dict[str, Any], path: str) -> None:
    parts = path.split(".")
    current: Any = doc
    for part in parts[:-1]:
        current = current.get(part) if isinstance(current, dict) else None
        if current is None:
            return
    if isinstance(current, dict):
        current.pop(parts[-1], None)


def is_operator_update(update: Any) -> bool:
    return isinstance(update, dict) and bool(update) and next(iter(update)).startswith("$")


def apply_update(doc: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Returns the updated copy of ``doc``; ``_id`` never changes."""
    if not is_operator_update(update):
        replacement = {"_id": doc["_id"]} if "_id" in doc else {}
        replacement.update({k: copy.deepcopy(v) for k, v in update.items() if k != "_id"})
        return replacement
    result = copy.deepcopy(doc)
    for operator, fields in update.items():
        for path, value in fields.items():
            if path == "_id" or path.startswith("_id."):
                raise CommandError(66, "Performing an update on the path '_id' would modify the immutable field '_id'")
            if operator == "$set":
                _set_path(result, path, copy.deepcopy(value))
            elif operator == "$setOnInsert":
                continue
            elif operator == "$unset":
                _unset_path(result, path)
            elif operator == "$inc":
                current = get_path(result, path)
                _set_path(result, path, value if current is _MISSING else current + value)
            elif operator == "$push":
                current = get_path(result, path)
                _set_path(result, path, [*([] if current is _MISSING else current), copy.deepcopy(value)])
            elif operator == "$currentDate":
                _set_path(result, path, datetime.datetime.now(datetime.UTC))
            else:
                raise bad_value(f"Unknown modifier: {operator}")
    return result


def upsert_seed(query: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The document an upsert starts from: the query's equality fields, then $setOnInsert."""
    seed: dict[str, Any] = {}
    for key, condition in (query or {}).items():
        if key.startswith("$"):
            continue
        if isinstance(condition, dict) and condition and next(iter(condition)).startswith("$"):
            if "$eq" in condition:
                _set_path(seed, key, copy.deepcopy(condition["$eq"]))
            continue
        _set_path(seed, key, copy.deepcopy(condition))
    if is_operator_update(update):
        for path, value in update.get("$setOnInsert", {}).items():
            _set_path(seed, path, copy.deepcopy(value))
    return seed


def project(doc: dict[str, Any], projection: dict[str, Any] | None) -> dict[str, Any]:
    if not projection:
        return doc
    include_id = bool(projection.get("_id", 1))
    fields = {k: v for k, v in projection.items() if k != "_id"}
    inclusive = any(bool(v) for v in fields.values())
    if inclusive:
        result: dict[str, Any] = {}
        if include_id and "_id" in doc:
            result["_id"] = doc["_id"]
        for path in fields:
            value = get_path(doc, path)
            if value is not _MISSING:
                _set_path(result, path, value)
        return result
    result = copy.deepcopy(doc)
    for path in fields:
        _unset_path(result, path)
    if not include_id:
        result.pop("_id", None)
    return result


def sort_documents(docs: list[dict[str, Any]], sort: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not sort:
        return docs
    if "$natural" in sort:
        # Storage order (insertion order here; for the oplog, ts order), reversed for -1.
        return list(docs) if int(sort["$natural"]) >= 0 else list(reversed(docs))
    ordered = list(docs)
    # Stable sorts applied from the least to the most significant key give a compound sort.
    for path, direction in reversed(list(sort.items())):
        ordered.sort(key=lambda d, p=path: sort_key(get_path(d, p)), reverse=int(direction) < 0)
    return ordered
