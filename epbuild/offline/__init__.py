"""The offline example's inputs: a local base image and stand-in git repositories, and the `prepare:
offline-example` recipe that makes them for a build.

Nothing here needs GitHub or Docker Hub, only Debian's package mirror:

* ``ensure_base_image()`` debootstraps a Debian bookworm minbase, imports it as
  ``epbuild-offline/bookworm-minbase:latest`` and builds ``examples/offline/base/Dockerfile``
  on it (Debian sid's HIP toolchain on LLVM 21, rdma-core's build deps, verbs, numa, python3).
* ``ensure_fixture_repos()`` turns ``examples/offline/fixtures/<component>/`` into bare git repos
  ``<dest>/<component>.git`` with deterministic commit hashes (fixed author, committer, dates and
  modes, written with ``git fast-import``), so that a matrix can pin them:
  ``pinned`` (A), ``moved`` (B: another revision string compiled into device code) and, for
  deepep, ``broken`` (C: device code that fails to compile for gfx942 only). rdma-core is the real
  upstream release tarball from Debian's source package, one commit tagged ``v<version>``.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from epbuild.offline import vendor_apt_repo
from epbuild.offline.base_image import _image_exists, ensure_base_image, suite_of
from epbuild.offline.fixtures import ensure_fixture_repos
from epbuild.offline.gitrepo import FixtureRepo
from epbuild.offline.python_stand_ins import ensure_wheels
from epbuild.offline.settings import FIXTURES_DIR, OFFLINE_BASE_IMAGE, REPO_ROOT, OfflineError
from epbuild.offline.vendor_apt_repo import ensure_vendor_repo
from epbuild.util.commands import Runner, shell_line
from epbuild.util.resources import resource

__all__ = ["OFFLINE_BASE_IMAGE", "FixtureRepo", "OfflineError", "ensure_base_image", "ensure_fixture_repos",
           "matrix_variant", "prepared"]

REPOS_DIR = REPO_ROOT / "build" / "offline" / "repos"


@contextlib.contextmanager
def prepared(matrix: Any, plans: Sequence[Any], runner: Runner, *, base_images: bool = True) -> Iterator[None]:
    """Makes what the offline example cannot pull or clone: the base images the given cells start from (unless
    `base_images` is false: `invoke bump` builds nothing, so it checks what needs a base only where it exists),
    the stand-in repositories and the signed vendor apt repository, then serves that repository on 127.0.0.1
    until the caller is done fetching.

    Each step does nothing when its result is already there. Each is one command of this package's own CLI,
    which is what a dry run prints and what the run's replay.sh records.
    """
    from epbuild.model.cells import expand

    steps: list[tuple[list[str], Callable[[], object]]] = []
    for name in dict.fromkeys(plan.cell.base for plan in plans) if base_images else ():
        image = matrix.model.bases[name].image
        suite_of(image)  # a base the recipe cannot make fails here, before anything runs
        # The toolchain must compile for every arch any cell on this base targets, not only the selected ones.
        archs = sorted({a for c in expand(matrix.model) if c.base == name for a in c.archs})
        if runner.dry_run:
            # A dry run never asks the engine, so it cannot tell whether the base image exists yet.
            print(f"# when the engine has no {image}:")
        if runner.dry_run or not _image_exists(image):
            steps.append((["python3", "-m", "epbuild.offline", "base", "--image", image, "--archs", *archs],
                          functools.partial(ensure_base_image, image, archs=archs)))
    steps.append((["python3", "-m", "epbuild.offline", "fixtures", str(REPOS_DIR)],
                  lambda: ensure_fixture_repos(REPOS_DIR, fixtures_dir=FIXTURES_DIR, registry=matrix.model.registry)))
    steps.append((["python3", "-m", "epbuild.offline", "python-wheels"], ensure_wheels))
    steps.append((["python3", "-m", "epbuild.offline", "vendor-repo"], ensure_vendor_repo))
    for argv, step in steps:
        runner.record(shell_line(argv))
        if not runner.dry_run:
            step()
    # Served only while inputs are fetched: the build itself reads the verified copies, never the server.
    runner.record(f"python3 -m epbuild.offline serve --port {vendor_apt_repo.PORT} & EPBUILD_VENDOR_SERVER=$!")
    if runner.dry_run:
        yield
    else:
        with vendor_apt_repo.serve():
            yield
    runner.record('kill "$EPBUILD_VENDOR_SERVER"')


def matrix_variant(dest: Path, *, moved: Sequence[str] = (), broken: Sequence[str] = (),
                   at: Mapping[str, str] | None = None, options: Mapping[str, Mapping[str, Any]] | None = None,
                   image_name: str | None = None) -> Path:
    """Writes `dest/matrix.yaml`: the example's matrix with the named components pinned to their stand-ins'
    `moved` (or `broken`) commit, or `at` any named commit of theirs (`{"deepep": "fnuz-max"}`), with `options`
    merged into the components' settings, its repository paths made absolute so the copy works from anywhere.
    Benchmarks and tests move pins with it; the stand-in repositories must exist (prepare makes them)."""
    from epbuild.model.yamlfile import dump_yaml, parse_yaml
    from epbuild.util import atomicfs

    commits = json.loads((REPOS_DIR / "commits.json").read_text())
    source = resource("examples/offline/matrix.yaml")
    data = parse_yaml(source.read_text())
    for kind, names in (("moved", moved), ("broken", broken)):
        for name in names:
            data["components"][name]["commit"] = commits[name]["commits"][kind]
    for name, key in (at or {}).items():
        data["components"][name]["commit"] = commits[name]["commits"][key]
        data["components"][name].pop("tag", None)
    for name, settings in (options or {}).items():
        data["components"][name].update(settings)
    if image_name:
        data["image"]["name"] = image_name
    links = data.get("python", {}).get("find_links", [])
    links[:] = [(source.parent / link).resolve().as_uri() if link.startswith(".") else link for link in links]
    for pin in data["components"].values():
        if pin["repo"].startswith("."):
            pin["repo"] = (source.parent / pin["repo"]).resolve().as_uri()
        for archive in (v for v in pin.values() if isinstance(v, dict) and str(v.get("url", "")).startswith(".")):
            archive["url"] = (source.parent / archive["url"]).resolve().as_uri()
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "matrix.yaml"
    atomicfs.write_text(path, dump_yaml(data))
    return path
