"""A pin's `requires`: commits its history must contain (a fix a component needs), each with its reason. Checked
in the sources cache's mirror, where fetching the pin brought its whole history."""

from __future__ import annotations

from pathlib import Path

from epbuild.inputs.git_mirrors import GIT_ENV
from epbuild.model.pins import SourcePin
from epbuild.util.commands import query
from epbuild.util.errors import EpbuildError


class MissingRequirement(EpbuildError):
    pass


def missing(mirror: Path, pin: SourcePin, commit: str) -> list[str]:
    """'<required commit> (<reason>)' for each requirement that `commit` (the pin, resolved) does not contain."""
    out = []
    for requirement in pin.requires:
        proc = query(["git", "-C", str(mirror), "merge-base", "--is-ancestor", f"{requirement.commit}^{{commit}}",
                      commit], env=GIT_ENV)
        # Exit 1: not an ancestor. Anything else: the mirror has no such commit, so the pin's history lacks it.
        if proc.returncode != 0:
            out.append(f"{requirement.commit} ({requirement.reason})")
    return out


def check(component: str, mirror: Path, pin: SourcePin, commit: str) -> None:
    lacking = missing(mirror, pin, commit)
    if lacking:
        raise MissingRequirement(f"{component}: the pin {commit[:12]} lacks required commit(s): "
                                 + "; ".join(lacking) + ". Pin a commit that contains them (invoke bump "
                                 f"{component} REF)")
