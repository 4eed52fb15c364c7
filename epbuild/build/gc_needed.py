"""What builds of the current matrices read under build/, for `invoke gc` (epbuild/build/garbage.py): derived
through the same path functions the build uses: every named context bakefile.cell_target hands a cell (exports,
versions, git heads, archives, wheelhouses, crates, vendor packages), each archive's download, each cell's layout
and its serving image's, and the mirror of every repository the matrices name (with the submodules their exports
record)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from epbuild.inputs.git_mirrors import GIT_ENV, GitMirrors
from epbuild.inputs.source_requests import mirror_overrides, requests_for
from epbuild.inputs.sources import join_url
from epbuild.model.stagegraph import built_pins
from epbuild.render.bakefile import cell_target, serving_target
from epbuild.render.dockerfiles import Rendering
from epbuild.util.commands import Runner, query
from epbuild.util.paths import source_dir


@dataclass(frozen=True)
class Needed:
    """What a build of the current matrices reads, relative to the checkout."""

    paths: frozenset[str]
    layouts: frozenset[str]
    mirrors: frozenset[str] | None
    """Names of the mirror folders needed; None when unknown (an export to read submodules from is missing)."""
    unknown_mirrors: str = ""


def needed(renderings: Iterable[Rendering], root: Path) -> Needed:
    """What builds of every cell of these matrices read under `root`."""
    paths: set[str] = set()
    layouts: set[str] = set()
    urls: dict[str, str] = {}
    overrides = mirror_overrides([])
    for rendering in renderings:
        for rc in rendering.cells:
            paths.update(cell_target(rc, context_root=".")["contexts"].values())
            for name, pin in built_pins(rc.plan).items():
                paths.update(a.download for a in rc.plan.registry[name].archives(pin))
            layouts.update({rc.cell.name, serving_target(rc.cell.name)})
        model = rendering.matrix.model
        pins = model.components.pins()
        for request in requests_for(rendering.matrix, list(pins), {}):
            urls[request.url] = source_dir(request.component, request.pin.commit)
        for request in requests_for(rendering.matrix, [n for n in overrides if n in pins], overrides):
            urls[request.url] = source_dir(request.component, request.pin.commit)
    mirrors = GitMirrors(root, Runner())
    names = {mirrors.mirror_for(url).name for url in urls}
    # Only the exports a cell builds from are read for submodules (a pin no cell builds is never exported).
    urls = {url: export for url, export in urls.items() if export in paths}
    missing = sorted(export for export in set(urls.values()) if not (root / export).is_dir())
    if missing:
        return Needed(frozenset(paths), frozenset(layouts), None,
                      f"mirrors kept: {', '.join(missing)} not exported, so the submodules they need are unknown")
    for url, export in urls.items():
        names.update(mirrors.mirror_for(sub).name for sub in submodule_urls(root / export, url))
    return Needed(frozenset(paths), frozenset(layouts), frozenset(names))


def submodule_urls(tree: Path, url: str) -> Iterator[str]:
    """The URL of every submodule an exported tree records in its .gitmodules (nested ones too), relative URLs
    resolved against the superproject's as the export resolved them (epbuild/inputs/sources.py)."""
    gitmodules = tree / ".gitmodules"
    if not gitmodules.is_file():
        return
    proc = query(["git", "config", "--file", str(gitmodules), "--get-regexp", r"^submodule\..*\.(path|url)$"],
                 env=GIT_ENV)
    entries: dict[str, dict[str, str]] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        name, _, kind = key[len("submodule."):].rpartition(".")
        entries.setdefault(name, {})[kind] = value
    for entry in entries.values():
        sub = entry.get("url", "")
        if not sub:
            continue
        sub = join_url(url, sub) if sub.startswith(("./", "../")) else sub
        yield sub
        if entry.get("path"):
            yield from submodule_urls(tree / entry["path"], sub)
