"""How the engine's build cache is trimmed (epbuild/build/engine_upkeep.py): the ages handed to `docker builder
prune --filter until=` must prune exactly the oldest-used records, never one in use."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from epbuild.build.engine_upkeep import CacheRecord, main, parse_records, prune_age, start_cost

NOW = datetime(2026, 12, 6, 21, 0, 0, tzinfo=timezone.utc)


def ages_pruned(records: list[CacheRecord], until: str) -> set[str]:
    """What the engine prunes for `until=<N>s`: the records not in use and unused for longer than N seconds
    (moby/buildkit cache/manager.go prune: KeepDuration compares each record's last use with now), except those a
    kept record was built on (a parent stays while a child holds it)."""
    assert until.endswith("s")
    keep_for = timedelta(seconds=int(until[:-1]))
    pruned = {r.id for r in records if not r.in_use and NOW - r.last_used > keep_for}
    by_id = {r.id: r for r in records}
    changed = True
    while changed:
        changed = False
        for kept in [r for r in records if r.id not in pruned]:
            for parent in kept.parents:
                if parent in pruned:
                    pruned.discard(parent)
                    changed = True
    assert pruned <= set(by_id)
    return pruned


def record(name: str, minutes_ago: float, in_use: bool = False, parent: str | None = None) -> CacheRecord:
    return CacheRecord(id=name, last_used=NOW - timedelta(minutes=minutes_ago), in_use=in_use,
                       parents=(parent,) if parent else ())


def test_the_oldest_used_records_go_until_the_target_is_left() -> None:
    records = [record("a", 50), record("b", 40), record("c", 30), record("d", 20), record("e", 10)]
    until = prune_age(records, target=2, now=NOW)
    assert until is not None
    assert ages_pruned(records, until) == {"a", "b", "c"}


def test_records_in_use_are_neither_pruned_nor_counted_as_prunable() -> None:
    records = [record("a", 50, in_use=True), record("b", 40), record("c", 30), record("d", 20)]
    until = prune_age(records, target=2, now=NOW)
    assert until is not None
    assert ages_pruned(records, until) == {"b", "c"}


def test_the_start_costs_one_read_per_record_and_ancestor() -> None:
    # base <- mid <- top: loading top reads 3, mid 2, base 1; two records with no parent read 1 each.
    records = [record("base", 60), record("mid", 50, parent="base"), record("top", 5, parent="mid"),
               record("other", 40), record("lone", 30)]
    assert start_cost(records) == 8


def test_a_recent_record_keeps_its_old_ancestors_and_they_count() -> None:
    records = [record("base", 60), record("mid", 50, parent="base"), record("top", 5, parent="mid"),
               record("other", 40), record("lone", 30)]
    until = prune_age(records, target=6, now=NOW)
    assert until is not None
    # top (5 min ago) and the chain it stands on cost 6; lone, the next most recent, would make it 7.
    pruned = ages_pruned(records, until)
    assert pruned == {"lone", "other"}
    assert start_cost([r for r in records if r.id not in pruned]) == 6


def test_nothing_is_pruned_at_or_under_the_target() -> None:
    records = [record("a", 50), record("b", 40)]
    assert prune_age(records, target=2, now=NOW) is None
    assert prune_age([record("a", 5, in_use=True), record("b", 4, in_use=True)], target=1, now=NOW) is None


def test_the_records_are_read_as_docker_prints_them() -> None:
    # Two records as docker 26.1.5's `system df --verbose --format '{{json .BuildCache}}'` printed them on this
    # project's CI machine (descriptions shortened); the second as it prints a record in use that was never used.
    payload = json.dumps([
        {"CacheType": "regular", "CreatedAt": "2026-12-06 21:30:40.582548352 +0000 UTC",
         "CreatedSince": "50 minutes ago", "Description": "mount / from exec /bin/sh -c true",
         "ID": "6wczmc3lfc8rk39j3pm436c7c", "InUse": "false",
         "LastUsedAt": "2026-12-06 21:32:26.396366208 +0000 UTC", "LastUsedSince": "48 minutes ago",
         "Parent": "son8frqy7de7n9oj0hsa0p050", "Shared": "false", "Size": "125kB", "UsageCount": "1"},
        {"CacheType": "source.local", "CreatedAt": "2026-12-06 23:10:00 +0100 CET", "ID": "x2", "InUse": "true",
         "LastUsedAt": "0001-01-01 00:00:00 +0000 UTC", "Shared": "false", "Size": "4.1kB", "UsageCount": "0"},
    ])
    first, second = parse_records(payload)
    assert first == CacheRecord("6wczmc3lfc8rk39j3pm436c7c",
                                datetime(2026, 12, 6, 21, 32, 26, 396366, tzinfo=timezone.utc), False,
                                ("son8frqy7de7n9oj0hsa0p050",))
    # Never used since it was made: its creation is its last use (22:10 UTC).
    assert second == CacheRecord("x2", datetime(2026, 12, 6, 22, 10, 0, tzinfo=timezone.utc), True)
    assert parse_records("null") == [] and parse_records("") == []


def test_a_target_above_the_limit_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--limit", "10", "--target", "20"])
    assert exit_info.value.code == 2
    assert "--target (20) must be between 0 and --limit (10)" in capsys.readouterr().err
