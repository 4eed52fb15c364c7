"""What `invoke render` makes of a matrix: its images/ folder (epbuild/render/dockerfiles.py) and, for a matrix of the
built-in components only, README.md's stage diagram (epbuild/render/diagram.py); written, or checked for drift."""

from __future__ import annotations

from pathlib import Path

from epbuild.render import diagram
from epbuild.render import dockerfiles as render
from epbuild.render.dockerfiles import Rendering
from epbuild.util import atomicfs


def readme(rendering: Rendering, root: Path) -> Path | None:
    """The README whose stage diagram the matrix renders. It documents the built-in components: a matrix with
    extra component folders leaves it alone."""
    return None if rendering.matrix.model.component_dirs else root / "README.md"


def drift(rendering: Rendering, root: Path) -> list[str]:
    """Each rendered file that differs from what the matrix and the templates make now."""
    path = readme(rendering, root)
    return render.drift(rendering) + (diagram.drift(path, rendering.matrix.model.registry) if path else [])


def write(rendering: Rendering, root: Path) -> list[str]:
    """Writes every rendered file; what was written, one line each."""
    written = render.write(rendering)
    lines = [f"wrote {len(written)} files for {len(rendering.cells)} cells to {rendering.out_dir}"]
    path = readme(rendering, root)
    if path is not None:
        text = path.read_text(encoding="utf-8")
        updated = diagram.readme_with_diagram(text, rendering.matrix.model.registry)
        if updated != text:
            atomicfs.write_text(path, updated)
            lines.append(f"wrote the stage diagram in {path}")
    return lines
