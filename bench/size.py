"""Final image size against the base image plus what `final` really adds (the bytes of every file it adds or
changes). Anything more is waste: a file written twice, a deleted file still in a lower layer, a build tree.
Target: at most 1.05x."""

from __future__ import annotations

import subprocess

from bench.results import OFFLINE, invoke, record
from epbuild.cli import project

LIST = ["find", "/", "-xdev", "-type", "f", "-printf", "%s %p\\n"]


def files(image: str) -> dict[str, int]:
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", LIST[0], image, *LIST[1:]],
                         capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        size, _, path = line.partition(" ")
        sizes[path] = int(size)
    return sizes


def image_size(image: str) -> int:
    return int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", image], capture_output=True,
                              text=True, check=True).stdout)


TARGET_RATIO = 1.05


def cell_sizes(image: str, base_image: str, base_files: dict[str, int] | None = None) -> dict[str, int | float]:
    """The cell image's size, its base's, the bytes of every file it adds or changes, and the ratio
    image / (base + added). `base_files`: the base's file list, when already read."""
    base_files = files(base_image) if base_files is None else base_files
    base_size = image_size(base_image)
    added = sum(size for path, size in files(image).items() if base_files.get(path) != size)
    size = image_size(image)
    return {"image_bytes": size, "base_bytes": base_size, "added_file_bytes": added,
            "ratio": round(size / (base_size + added), 4)}


def main() -> None:
    invoke("build", "--quiet", "--matrix", OFFLINE, "--all")
    rendering = project.rendering(OFFLINE)
    bases = {rc.plan.base.image: (files(rc.plan.base.image), image_size(rc.plan.base.image)) for rc in rendering.cells}
    rows, figures = [], {}
    for rc in rendering.cells:
        cell = cell_sizes(rc.plan.local_tag, rc.plan.base.image, bases[rc.plan.base.image][0])
        figures[rc.cell.name] = cell
        rows.append(f"| {rc.cell.name} | {int(cell['image_bytes']) / 1e6:.1f} MB | "
                    f"{int(cell['added_file_bytes']) / 1e6:.1f} MB | {cell['ratio']:.3f} |")
    worst = max(f["ratio"] for f in figures.values())  # type: ignore[index]
    record("Final image size", [
        "Base images: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, (_, size) in bases.items()) + ".", "",
        "| cell | image | files final adds or changes | image / (base + added) |", "| --- | --- | --- | --- |",
        *rows, "",
        f"Worst ratio {worst:.3f}; target at most {TARGET_RATIO}: {'met' if worst <= TARGET_RATIO else 'MISSED'}.",
    ], {"cells": figures, "worst_ratio": worst, "met": worst <= TARGET_RATIO})


if __name__ == "__main__":
    main()
