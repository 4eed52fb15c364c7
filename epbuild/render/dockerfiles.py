"""Renders every cell of a matrix into images/<cell>/Dockerfile plus the bake file.

Rendering is pure: it returns the files as text, and writing or checking them is a separate step, so an
invalid matrix or a failing template never leaves a half-written images/.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from epbuild.model import stagegraph
from epbuild.model.cells import Cell, expand
from epbuild.model.component import TEMPLATE, CellFacts, StageInput, Wheel, apt_update
from epbuild.model.matrix import LoadedMatrix
from epbuild.model.plan import CellPlan
from epbuild.render import bakefile, final_stage, manifest, pieces, vendor_stage
from epbuild.render.pieces import Pieces
from epbuild.render.templating import STAGE_TEMPLATES, TEMPLATES, render, template_in
from epbuild.util import atomicfs

GENERATED_FILES = ("Dockerfile",)


def _base_context(plan: CellPlan) -> dict[str, Any]:
    cell = CellFacts(plan.facts, stagegraph.BASE_USES, stagegraph.BASE)
    return {"rocm_path": cell["base.rocm_path"], "packages": cell["base.build_packages"],
            "apt_update": apt_update(cell["base.apt_valid_until"])}


def _stage_text(stage: stagegraph.Stage, plan: CellPlan, above: str) -> tuple[str, str]:
    """The text of a stage other than `final` (final_stage renders that), with its digest as the recipe key takes
    it (manifest.stage_digest). Every such stage is a function of the matrix's pins, the cell facts its spec
    declares in `uses` (CellFacts refuses any other) and its parent: cells that agree on those get both made once
    per matrix, which is most of a render's work (bench.render_speed's 1,002 cells hold about 3,000 distinct stage
    texts among their 11,000 stages besides `final`)."""
    component = stage.component.name if stage.component is not None else None
    memo_key = ("stage-text", stage.name, above, *(plan.fact(component, name) for name in stage.uses))
    try:
        return plan.shared[memo_key]
    except KeyError:
        text = _render_stage(stage, plan, above)
        made = plan.shared[memo_key] = (text, manifest.stage_digest(text))
        return made
    except TypeError:  # an unhashable fact value (none today): rendered for this cell alone
        text = _render_stage(stage, plan, above)
        return text, manifest.stage_digest(text)


def _render_stage(stage: stagegraph.Stage, plan: CellPlan, above: str) -> str:
    if stage.requirements_of is not None:
        template = template_in(STAGE_TEMPLATES, "requirements.Dockerfile.j2")
        context: dict[str, Any] = {"component": stage.requirements_of.name}
    elif stage.component is None:
        template = template_in(STAGE_TEMPLATES, f"{stage.name}.Dockerfile.j2")
        context = vendor_stage.context(plan) if stage.name == stagegraph.VENDOR else _base_context(plan)
    else:
        c = stage.component
        facts = CellFacts(plan.facts_for(c.name), c.uses, c.name)
        context = c.context(StageInput(plan.pins[c.name], plan.pins, facts))
        if isinstance(c.output, Wheel):
            context["wheel_dir"] = stagegraph.wheel_dir(c.name)
        template = template_in(c.folder, TEMPLATE)
    body = render(template, context).rstrip("\n")
    return f"FROM {above} AS {stage.name}\n{body}\n"


def base_reference(plan: CellPlan) -> str:
    """What `base` starts FROM: the base image, at its pinned digest when the matrix pins one."""
    base = plan.base
    return f"{base.image}@{base.digest}" if base.digest else base.image


@dataclass(frozen=True)
class RenderedCell:
    plan: CellPlan
    stages: dict[str, str]
    dockerfile: str
    key: str
    """The recipe key (epbuild.render.manifest.recipe_key); the content key adds the inputs resolved at build time."""

    @property
    def cell(self) -> Cell:
        return self.plan.cell

    def files(self) -> dict[str, str]:
        return {"Dockerfile": self.dockerfile}


@dataclass(frozen=True)
class Rendering:
    matrix: LoadedMatrix
    out_dir: Path
    cells: list[RenderedCell]
    bake: str

    def files(self) -> dict[Path, str]:
        """Every generated file by its path under out_dir."""
        out = {Path(rc.cell.name) / name: text for rc in self.cells for name, text in rc.files().items()}
        out[Path(bakefile.BAKE_FILE)] = self.bake
        return out


def output_dir(matrix: LoadedMatrix) -> Path:
    """images/ beside the matrix file: images/ for ./matrix.yaml, examples/offline/images/ for the example."""
    return matrix.directory / "images"


def render_cell(plan: CellPlan, matrix_label: str) -> RenderedCell:
    texts: dict[str, str] = {}
    digests: list[str] = []  # each keyless text's, as the recipe key takes it
    final: final_stage.FinalText | None = None
    parents = stagegraph.parents(plan)
    for stage in stagegraph.stages_for(plan):
        above = parents[stage.name] or base_reference(plan)
        if stage.name == stagegraph.FINAL:
            final = final_stage.FinalText(plan, above)
            texts[stage.name] = final.text("")
            digests.append(manifest.stage_digest(texts[stage.name]))
        else:
            texts[stage.name], digest = _stage_text(stage, plan, above)
            digests.append(digest)
    if final is None:
        raise AssertionError("the stage graph always ends in `final`")
    # The header names the matrix's path: it is left out, so the key does not depend on where the matrix is.
    key = manifest.recipe_key(plan, digests)
    texts[stagegraph.FINAL] = final.text(key)
    return RenderedCell(plan=plan, stages=texts, dockerfile=_dockerfile(plan, matrix_label, texts), key=key)


def _dockerfile(plan: CellPlan, matrix_label: str, texts: dict[str, str]) -> str:
    """The cell's Dockerfile: its stages' texts in the outer template. What that writes around them and the cell's
    name depends only on the matrix's label and how many stages there are: rendered once per matrix for each."""
    values = [plan.cell.name, *texts.values()]
    memo_key = ("dockerfile-pieces", matrix_label, len(texts))
    try:
        cut: Pieces | None = plan.shared[memo_key]
    except KeyError:
        holders = pieces.holders(len(values))
        cut = plan.shared[memo_key] = Pieces.of(_outer(matrix_label, holders[0], holders[1:]), len(values))
    return cut.join(values) if cut is not None else _outer(matrix_label, plan.cell.name, list(texts.values()))


def _outer(matrix_label: str, cell: str, stages: list[str]) -> str:
    return render(template_in(TEMPLATES, "Dockerfile.j2"), {"matrix_file": matrix_label, "cell": cell,
                                                            "stages": stages})


def render_matrix(matrix: LoadedMatrix, root: Path) -> Rendering:
    """Renders every cell; `root` is the folder builds run from (bake paths are relative to it)."""
    label = _relative(matrix.path, root)
    out_dir = output_dir(matrix)
    cells = [render_cell(CellPlan(cell, matrix.model), label) for cell in expand(matrix.model)]
    bake = bakefile.bake_json(cells, context_root=_relative(out_dir, root))
    return Rendering(matrix=matrix, out_dir=out_dir, cells=cells, bake=bake)


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()


def write(rendering: Rendering) -> list[Path]:
    """Replaces out_dir with the rendering in one step (readers see the old images/ or the new, never none or a
    mix). Files epbuild did not write there (a README, notes) are carried over; files it wrote for cells the
    matrix no longer has are dropped."""
    out_dir = rendering.out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    expected = rendering.files()
    prefix = f".{out_dir.name}-"
    with atomicfs.locked_dir(out_dir.parent):
        atomicfs.remove_leftovers(out_dir.parent, prefix)  # staging folders of killed renders
        staging = atomicfs.temp_dir(out_dir.parent, prefix)
        try:
            for rel in _kept_files(out_dir, expected):
                _make_dirs(staging, rel.parent)
                shutil.copy2(out_dir / rel, staging / rel, follow_symlinks=False)
            for rel, text in expected.items():
                _make_dirs(staging, rel.parent)
                (staging / rel).write_text(text, encoding="utf-8")
                (staging / rel).chmod(atomicfs.FILE_MODE)
            atomicfs.replace_dir(staging, out_dir)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
    return sorted(out_dir / rel for rel in expected)


def _cell_file_names(expected: dict[Path, str]) -> set[str]:
    """The names of the files a render writes into each cell's folder."""
    return set(GENERATED_FILES) | {rel.name for rel in expected if len(rel.parts) == 2}


def _generated_before(out_dir: Path, names: set[str]) -> set[Path]:
    """The files an earlier render wrote: the bake file and each cell's files for the cells it names."""
    try:
        cells = json.loads((out_dir / bakefile.BAKE_FILE).read_text(encoding="utf-8"))["target"]
    except (OSError, ValueError, KeyError, TypeError):
        return {Path(bakefile.BAKE_FILE)}
    return {Path(bakefile.BAKE_FILE)} | {Path(str(cell)) / name for cell in cells for name in names}


def _kept_files(out_dir: Path, expected: dict[Path, str]) -> list[Path]:
    if not out_dir.is_dir():
        return []
    ours = _generated_before(out_dir, _cell_file_names(expected)) | set(expected)
    return sorted(rel for path in out_dir.rglob("*") if not path.is_dir() or path.is_symlink()
                  if (rel := path.relative_to(out_dir)) not in ours)


def _make_dirs(root: Path, rel: Path) -> None:
    """Creates root/rel with every new folder at 0755, whatever the umask."""
    path = root
    for part in rel.parts:
        path = path / part
        if not path.is_dir():
            path.mkdir()
            path.chmod(atomicfs.DIR_MODE)


def drift(rendering: Rendering) -> list[str]:
    """Files under out_dir that differ from the rendering: changed, missing, or no longer generated."""
    expected = rendering.files()
    problems: list[str] = []
    for rel, text in sorted(expected.items()):
        path = rendering.out_dir / rel
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from the rendering")
    if rendering.out_dir.is_dir():
        # Only files shaped like generated ones: `invoke render` keeps anything else (a README), so reporting it
        # would fail the check for good.
        names = _cell_file_names(expected)
        for path in sorted(p for p in rendering.out_dir.glob("*/*") if p.name in names):
            if path.relative_to(rendering.out_dir) not in expected:
                problems.append(f"{path}: not generated by the matrix (a stale cell? `invoke render` drops the "
                                "cells it wrote before; delete others by hand)")
    return problems
