"""Keeps the engine's build cache small enough for dockerd to start again.

dockerd gives its builder ten seconds to come up: moby v26's cmd/dockerd/daemon.go starts the API routers under
`context.WithTimeout(context.Background(), 10*time.Second)`, and BuildKit's cache manager loads every cache record
inside them (moby/buildkit cache/manager.go `init`), walking each record's ancestors with one snapshotter Stat per
ancestor. The start therefore costs one Stat per (record, ancestor) pair: the sum over the records of their chain
lengths, which the listing's Parent links give. On this project's 2-core CI machine a Stat took 1.3 ms (334
records, 4414 pairs: 5.9 s); 843 records started in 10.8 s, and 6418 did not: the daemon logged "Daemon has
completed initialization", never listened, and exited with "context deadline exceeded" (stop 30's CI). The
builder's own GC does not prevent it: it keeps the cache under a size, and the stand-ins' layers are small.

So once the start would cost more than START_LIMIT Stats, the least recently used records are pruned until it
costs at most START_TARGET, with `docker builder prune --filter until=<age>`: the records the latest builds used
stay, older ones go. ci/setup.sh runs this before the tests and the integration tests after them
(tests/integration/conftest.py).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from epbuild.util.commands import CommandFailed, Runner

# Stats (record, ancestor pairs) at start: 3000 take about 4 s at the 1.3 ms measured, well inside the 10 s.
START_LIMIT = 3000
START_TARGET = 2000
MAX_ROUNDS = 5


@dataclass(frozen=True)
class CacheRecord:
    id: str
    last_used: datetime
    in_use: bool
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trim:
    before: int  # the start's cost in Stats, before and after
    after: int
    limit: int
    until: str | None  # the last age given to `docker builder prune`, or None when nothing was pruned

    def summary(self) -> str:
        if self.until is None:
            return (f"engine build cache: dockerd's start would read {self.before} record ancestors, within the "
                    f"limit of {self.limit}; nothing pruned")
        return (f"engine build cache: dockerd's start would read {self.before} record ancestors, over the limit of "
                f"{self.limit} (it gives its builder 10 s); pruned the least recently used records down to "
                f"{self.after}")


# How docker prints a time in `system df --verbose --format json` (Go's time.String: "2026-12-06
# 21:32:26.396366208 +0000 UTC"); the engine API's RFC 3339 ("2026-12-06T21:32:26.396366208Z") reads the same.
_TIME = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?\s*(?:Z|([+-])(\d\d):?(\d\d))")


def _timestamp(text: object) -> datetime | None:
    match = _TIME.match(str(text or ""))
    if not match or match.group(1).startswith("0001-"):  # Go's zero time: never
        return None
    day, hours, minutes, seconds, fraction, sign, zone_h, zone_m = match.groups()
    offset = timedelta(hours=int(zone_h or 0), minutes=int(zone_m or 0)) * (-1 if sign == "-" else 1)
    return datetime.fromisoformat(day).replace(
        hour=int(hours), minute=int(minutes), second=int(seconds),
        microsecond=int((fraction or "0")[:6].ljust(6, "0")), tzinfo=timezone(offset))


def parse_records(payload: str) -> list[CacheRecord]:
    """The build cache records `docker system df --verbose --format '{{json .BuildCache}}'` lists (ID, InUse,
    CreatedAt, LastUsedAt; docker prints the flag and the times as text)."""
    entries = json.loads(payload or "null") or []
    records = []
    for entry in entries:
        used = _timestamp(entry.get("LastUsedAt")) or _timestamp(entry.get("CreatedAt"))
        parents = entry.get("Parents") or ([entry["Parent"]] if entry.get("Parent") else [])
        records.append(CacheRecord(id=entry["ID"], last_used=used or datetime.now(timezone.utc),
                                   in_use=str(entry.get("InUse")).lower() == "true", parents=tuple(parents)))
    return records


def _lineages(records: Sequence[CacheRecord]) -> dict[str, frozenset[str]]:
    """Each record's chain: itself and every ancestor the listing has."""
    by_id = {r.id: r for r in records}
    chains: dict[str, frozenset[str]] = {}

    def chain(record_id: str) -> frozenset[str]:
        if record_id not in chains:
            chains[record_id] = frozenset()  # a cycle (never seen) ends here instead of recursing forever
            found = {record_id}
            for parent in by_id[record_id].parents if record_id in by_id else ():
                found |= chain(parent) if parent in by_id else set()
            chains[record_id] = frozenset(found)
        return chains[record_id]

    for record in records:
        chain(record.id)
    return chains


def start_cost(records: Sequence[CacheRecord]) -> int:
    """The Stats dockerd's builder makes to load these records at start: each record's chain length."""
    return sum(len(chain) for chain in _lineages(records).values())


def prune_age(records: Sequence[CacheRecord], target: int, now: datetime) -> str | None:
    """The `until` age that prunes the least recently used records until the start costs at most `target`, or
    None when it already does. A kept record keeps its ancestors (BuildKit prunes only what nothing depends on),
    and a record in use is never pruned, so both count as kept whatever their age."""
    chains = _lineages(records)
    if sum(len(chain) for chain in chains.values()) <= target:
        return None
    kept: set[str] = set()
    for record in records:
        if record.in_use:
            kept |= chains[record.id]
    cost = sum(len(chains[i]) for i in kept)
    newest_first = sorted((r for r in records if not r.in_use), key=lambda r: r.last_used, reverse=True)
    cutoff: datetime | None = None
    for record in newest_first:
        added = chains[record.id] - kept
        extra = sum(len(chains[i]) for i in added)
        if cost + extra > target:
            cutoff = record.last_used
            break
        kept |= added
        cost += extra
    if cutoff is None:
        return None
    # What was last used at or before the cutoff goes: its age, rounded down to whole seconds so that it is
    # included (the engine prunes what was unused for longer than `until`).
    seconds = max(0, math.floor((now - cutoff).total_seconds()) - 1)
    return f"{seconds}s"


def list_records(runner: Runner) -> list[CacheRecord]:
    proc = runner.run(["docker", "system", "df", "--verbose", "--format", "{{json .BuildCache}}"],
                      capture=True, mutating=False, record=False, timeout=300)
    return parse_records(proc.stdout.strip())


def trim(runner: Runner, limit: int = START_LIMIT, target: int = START_TARGET) -> Trim:
    found = list_records(runner)
    before = cost = start_cost(found)
    until = None
    if before <= limit:
        return Trim(before=before, after=before, limit=limit, until=None)
    # Records the same moment last used are pruned together, and the listing can change between the two
    # commands: prune again, from what is left, while it helps.
    for _ in range(MAX_ROUNDS):
        age = prune_age(found, target, datetime.now(timezone.utc))
        if age is None:
            break
        until = age
        runner.run(["docker", "builder", "prune", "--all", "--force", "--filter", f"until={age}"], capture=True,
                   timeout=1800)
        found = list_records(runner)
        left = start_cost(found)
        if left >= cost:
            break
        cost = left
    return Trim(before=before, after=cost, limit=limit, until=until)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m epbuild.build.engine_upkeep", description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=START_LIMIT,
                        help="prune once dockerd's start would read more record ancestors than this")
    parser.add_argument("--target", type=int, default=START_TARGET, help="prune down to this many")
    args = parser.parse_args(argv)
    if not 0 <= args.target <= args.limit:
        parser.error(f"--target ({args.target}) must be between 0 and --limit ({args.limit})")
    try:
        result = trim(Runner(), limit=args.limit, target=args.target)
    except CommandFailed as exc:
        print(f"engine_upkeep: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
