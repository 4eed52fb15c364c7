"""`python -m epbuild.offline base|fixtures|python-wheels|vendor-repo|serve`: make the offline example's inputs by hand."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from epbuild.offline import vendor_apt_repo
from epbuild.offline.base_image import ensure_base_image
from epbuild.offline.fixtures import ensure_fixture_repos
from epbuild.offline.python_stand_ins import ensure_wheels
from epbuild.offline.settings import FIXTURES_DIR, OFFLINE_BASE_IMAGE

log = logging.getLogger(__name__)


def repin() -> list[str]:
    """Rewrites the example matrix's stand-in commits (tags kept) to what the stand-in folders now give, each
    component on the commit of the same name as before."""
    from epbuild.model.yamlfile import parse_yaml
    from epbuild.offline import REPOS_DIR
    from epbuild.pinning import matrix_edit
    from epbuild.util import atomicfs
    from epbuild.util.resources import resource

    before = REPOS_DIR / "commits.json"
    # Which of its stand-in's commits each component is pinned at (`pinned`, or an overlay such as MoRI's `ionic`),
    # read before the repositories are made again: the pin stays on the commit of that name.
    names = {commit: kind for entry in (json.loads(before.read_text()).values() if before.is_file() else [])
             for kind, commit in entry["commits"].items()}
    repos = ensure_fixture_repos(REPOS_DIR, fixtures_dir=FIXTURES_DIR)
    path = resource("examples/offline/matrix.yaml")
    text = path.read_text()
    pinned = parse_yaml(text)["components"]
    moved = []
    # Every component with a stand-in of its own (rdma-core's repository is Debian's source, pinned by its tag).
    for name in (n for n in repos if n in pinned and n != "rdma-core"):
        commit = repos[name].commits[names.get(pinned[name]["commit"], "pinned")]
        new = matrix_edit.with_pin(text, path, name, commit, repos[name].tag)
        if new != text:
            moved.append(f"{name}: {commit}")
            text = new
    if moved:
        atomicfs.write_text(path, text)
    return moved or ["every stand-in pin is current"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m epbuild.offline", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    base = sub.add_parser("base", help="build the offline base image")
    base.add_argument("--image", default=OFFLINE_BASE_IMAGE)
    base.add_argument("--archs", nargs="*", default=[], help="archs its toolchain must compile for")
    base.add_argument("--rebuild", action="store_true")
    fixtures = sub.add_parser("fixtures", help="make the fixture git repos")
    fixtures.add_argument("dest", type=Path)
    fixtures.add_argument("--fixtures-dir", type=Path, default=FIXTURES_DIR)
    sub.add_parser("repin", help="remake the stand-in repositories and point examples/offline/matrix.yaml at "
                                 "their pinned commits (after editing a stand-in: any file of it, README included)")
    sub.add_parser("python-wheels", help="build the stand-in Python distributions' wheels (python.find_links)")
    sub.add_parser("vendor-repo", help="make the signed stand-in vendor apt repository")
    serve = sub.add_parser("serve", help="serve the vendor apt repository on 127.0.0.1 until interrupted")
    serve.add_argument("--port", type=int, default=vendor_apt_repo.PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.cmd == "base":
        ensure_base_image(args.image, archs=args.archs, rebuild=args.rebuild)
    elif args.cmd == "repin":
        for line in repin():
            print(line)
    elif args.cmd == "python-wheels":
        for wheel in ensure_wheels():
            print(wheel)
    elif args.cmd == "vendor-repo":
        print(vendor_apt_repo.ensure_vendor_repo())
    elif args.cmd == "serve":
        with vendor_apt_repo.serve(vendor_apt_repo.ensure_vendor_repo(), args.port) as url:
            print(f"serving {vendor_apt_repo.REPO_DIR} at {url}; Ctrl-C stops", flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
    else:
        repos = ensure_fixture_repos(args.dest, fixtures_dir=args.fixtures_dir)
        json.dump(
            {n: {"path": str(r.path), "commits": r.commits, "tag": r.tag} for n, r in repos.items()},
            sys.stdout,
            indent=2,
        )
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
