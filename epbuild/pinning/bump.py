"""`invoke bump COMPONENT REF`: moves one pin to the commit a branch, tag or commit names, and says what that
means: the upstream log between the pins, the stages that re-execute in each cell, and the new pin's checks.

The matrix's local preparation (`prepare: offline-example`) runs first, as for a build. REF is resolved in the
component's repository through the sources cache (mirrors honoured) to a full commit, whose tree is exported and
put through every pre-bake step a build runs (epbuild/build/prebake.py, the same function) in every cell the pin
reaches. Only when all pass is the matrix rewritten, with its comments and layout kept, and images/ (and the CI
pipelines, when they are this matrix's) re-rendered. A dry run, or a failing check, writes nothing (either may
fetch into the sources cache and prepare inputs under build/).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from epbuild.build import build_inputs, rebuild_plan
from epbuild.build.source_trees import Trees
from epbuild.ci import pipelines
from epbuild.inputs import requirements, sources
from epbuild.inputs.git_mirrors import GIT_ENV
from epbuild.inputs.source_requests import requests_for
from epbuild.model.matrix import LoadedMatrix
from epbuild.model.patterns import COMMIT
from epbuild.model.stagegraph import built_pins
from epbuild.pinning import follow_reference, matrix_edit
from epbuild.render import dockerfiles as render
from epbuild.util.commands import Runner, query
from epbuild.util.errors import EpbuildError

LOG_CAP = 20
ALL_REFS = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]


class BumpError(EpbuildError):
    pass


@dataclass
class UpstreamLog:
    count: int
    lines: list[str]
    dropped: int = 0
    """Commits of the old pin the new one does not contain (a pin moved back or to another branch)."""


@dataclass
class Bump:
    component: str
    ref: str
    kind: str
    """'branch', 'tag' or 'commit'."""
    old: str
    new: str
    tag: str | None
    log: UpstreamLog
    plan: dict[str, list[rebuild_plan.StageRun]]
    checks: list[str]
    reference: list[str] = field(default_factory=list)
    """Where the bumped component holds the reference the matrix follows: its pins at the new commit, beside the
    matrix's."""
    written: list[Path] = field(default_factory=list)
    failed: bool = False
    """A pre-bake check failed: nothing may be written."""
    dry_run: bool = True
    new_text: str = ""
    """The matrix with the pin moved."""
    new_rendering: render.Rendering | None = None

    def report(self) -> str:
        lines = [f"{self.component}: {self.old[:12]} -> {self.new} ({self.kind} {self.ref}"
                 + (f", tag {self.tag}" if self.tag and self.kind != "tag" else "") + ")"]
        lines.append(f"upstream log: {self.log.count} commit(s) from {self.old[:12]} to {self.new[:12]}"
                     + (f" (showing {LOG_CAP})" if self.log.count > LOG_CAP else ""))
        lines += [f"  {line}" for line in self.log.lines]
        if self.log.dropped:
            lines.append(f"  and {self.log.dropped} commit(s) of the old pin are not in the new one")
        lines.append("rebuild plan (stages that re-execute, per cell):")
        lines += rebuild_plan.describe(self.plan)
        lines.append("checks of the new pin:")
        lines += [f"  {line}" for line in self.checks]
        if self.reference:
            lines.append("the reference at the new pin, beside the matrix (`invoke pins --write` follows it):")
            lines += [f"  {line}" for line in self.reference]
        if self.written:
            lines.append(f"wrote {', '.join(str(p) for p in self.written)}")
        elif self.dry_run:
            lines.append("dry run: nothing written")
        return "\n".join(lines)


def bump(loaded: LoadedMatrix, component: str, ref: str, root: Path, mirrors: dict[str, str], *,
         dry_run: bool) -> Bump:
    pins = loaded.model.components.pins()
    if component not in pins:
        raise BumpError(f"{loaded.path}: no component {component!r}; the matrix has {', '.join(pins)}")
    old_rendering = render.render_matrix(loaded, root)
    runner = Runner()
    # What a build prepares first (the offline example's stand-in repositories among it), for the cells the pin
    # reaches; but no base image: bump builds nothing, and checks what needs a base where the engine has it.
    with build_inputs.prepared(old_rendering, _reached(old_rendering, component), runner, base_images=False):
        result = _bump(loaded, old_rendering, component, ref, root, mirrors, runner)
    result.dry_run = dry_run
    if result.failed:
        raise BumpError(result.report() + "\nthe new pin fails a check `invoke build` runs before bake, so the "
                        "matrix was left as it was")
    if dry_run:
        return result
    new_rendering = result.new_rendering
    assert new_rendering is not None  # _bump always renders the moved matrix
    ours = not pipelines.drift(pipelines.render(old_rendering, root))
    matrix_edit.write_atomically(loaded.path, result.new_text)
    render.write(new_rendering)
    result.written = [loaded.path, new_rendering.out_dir]
    if ours:
        # The pipelines are generated from this matrix (not another one), so they follow it.
        result.written += pipelines.write(pipelines.render(new_rendering, root))
    return result


def _reached(rendering: render.Rendering, component: str) -> list[render.RenderedCell]:
    return [rc for rc in rendering.cells if component in built_pins(rc.plan)]


def _bump(loaded: LoadedMatrix, old_rendering: render.Rendering, component: str, ref: str, root: Path,
          mirrors: dict[str, str], runner: Runner) -> Bump:
    """Resolves REF, exports its tree and runs the pre-bake steps on it; writes nothing."""
    pin = loaded.model.components.pins()[component]
    request = requests_for(loaded, [component], mirrors)[0]
    cache = sources.SourceCache(root, runner)
    wanted = ALL_REFS + [c for c in (ref, pin.commit) if len(c) == 40 and COMMIT.fullmatch(c)]
    mirror = cache.fetch_refs(request, wanted)
    new, kind = _resolve(cache, mirror, ref, request.url)
    old = cache.rev_parse(mirror, f"{pin.commit}^{{commit}}")
    if old is None:
        raise BumpError(f"{component}: the current pin {pin.commit} is not in {request.url}")
    tag = ref if kind == "tag" else (pin.tag if pin.tag and cache.rev_parse(
        mirror, f"refs/tags/{pin.tag}^{{commit}}") == new else None)
    requirements.check(component, mirror, pin, new)
    moved_pin = pin.model_copy(update={"commit": new, "tag": tag})
    exported = cache.export(dataclasses.replace(request, pin=moved_pin))
    checks = [f"{new[:12]} is in {request.url}" + (f"; tag {tag} names it" if tag else ""),
              f"its tree exports (submodules included) to {exported.path}"]
    checks += [f"contains {r.commit[:12]} ({r.reason})" for r in pin.requires] or ["no `requires` to check"]

    new_text = matrix_edit.with_pin(loaded.path.read_text(), loaded.path, component, new, tag)
    new_loaded = matrix_edit.validated(loaded.path, new_text)
    new_rendering = render.render_matrix(new_loaded, root)
    cells = _reached(new_rendering, component)
    # The very steps a build runs before bake, on the new pin's tree, for this component in every cell it reaches.
    prebake = build_inputs.prebake(new_rendering, cells, root, mirrors, runner, Trees([exported]),
                                   only=frozenset({component}), pull_bases=False)
    checks.append(f"what `invoke build` checks before bake, in the {len(cells)} cell(s) the pin reaches:")
    checks += [f"  {line}" for line in prebake.lines()]
    result = Bump(component, ref, kind, old, new, tag, _log(mirror, old, new),
                  rebuild_plan.plan(old_rendering, new_rendering, root), checks, failed=prebake.failed is not None,
                  new_text=new_text, new_rendering=new_rendering)
    if loaded.model.reference is not None and loaded.model.reference.component == component:
        result.reference = follow_reference.beside_bump(loaded, exported.path, f"{component}@{new[:12]}", root,
                                                       mirrors)
    return result


def _resolve(cache: sources.SourceCache, mirror: Path, ref: str, url: str) -> tuple[str, str]:
    if COMMIT.fullmatch(ref):
        full = cache.rev_parse(mirror, f"{ref}^{{commit}}")
        if full and full.startswith(ref):
            return full, "commit"
    for rev, kind in ((f"refs/tags/{ref}^{{commit}}", "tag"), (f"refs/remotes/origin/{ref}^{{commit}}", "branch")):
        found = cache.rev_parse(mirror, rev)
        if found:
            return found, kind
    raise BumpError(f"{ref!r} is not a branch, tag or commit of {url}")


def _log(mirror: Path, old: str, new: str) -> UpstreamLog:
    def git(*args: str) -> str:
        proc = query(["git", "-C", str(mirror), *args], env=GIT_ENV)
        if proc.returncode != 0:
            raise BumpError(f"git {' '.join(args)} in {mirror}: {proc.stderr.strip()}")
        return proc.stdout

    count = int(git("rev-list", "--count", f"{old}..{new}"))
    lines = git("log", f"--max-count={LOG_CAP}", "--format=%h %s", f"{old}..{new}").splitlines()
    dropped = int(git("rev-list", "--count", f"{new}..{old}"))
    return UpstreamLog(count, lines, dropped)
