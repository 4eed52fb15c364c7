"""Final image size against the base image plus what `final` really adds (the bytes of every file it adds or
changes). Anything more is waste: a file written twice, a deleted file still in a lower layer, a build tree.
Target: at most 1.05x."""

from __future__ import annotations

import subprocess

from bench.results import OFFLINE, invoke, record
from epbuild import project

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


def main() -> None:
    invoke("build", "--quiet", "--matrix", OFFLINE, "--all")
    rendering = project.rendering(OFFLINE)
    bases = {rc.plan.base.image: (files(rc.plan.base.image), image_size(rc.plan.base.image)) for rc in rendering.cells}
    rows, figures = [], {}
    for rc in rendering.cells:
        base_files, base_size = bases[rc.plan.base.image]
        image = rc.plan.local_tag
        final_files = files(image)
        added = sum(size for path, size in final_files.items() if base_files.get(path) != size)
        ratio = image_size(image) / (base_size + added)
        figures[rc.cell.name] = {"image_bytes": image_size(image), "base_bytes": base_size,
                                 "added_file_bytes": added, "ratio": round(ratio, 4)}
        rows.append(f"| {rc.cell.name} | {image_size(image) / 1e6:.1f} MB | {added / 1e6:.1f} MB | {ratio:.3f} |")
    worst = max(f["ratio"] for f in figures.values())  # type: ignore[index]
    record("Final image size", [
        "Base images: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, (_, size) in bases.items()) + ".", "",
        "| cell | image | files final adds or changes | image / (base + added) |", "| --- | --- | --- | --- |",
        *rows, "", f"Worst ratio {worst:.3f}; target at most 1.05: {'met' if worst <= 1.05 else 'MISSED'}.",
    ], {"cells": figures, "worst_ratio": worst, "met": worst <= 1.05})


if __name__ == "__main__":
    main()
