"""What to fetch: each component's pinned repository as a request, with the URL actually fetched (the matrix's,
a mirror's given by `--mirror` or EPBUILD_MIRROR_<COMPONENT>, or a path relative to the matrix file), and what an
export hands back."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from epbuild.model.matrix import LoadedMatrix
from epbuild.model.patterns import GIT_URL
from epbuild.model.pins import SourcePin
from epbuild.util.errors import EpbuildError

MIRROR_ENV_PREFIX = "EPBUILD_MIRROR_"


class SourceError(EpbuildError):
    pass


@dataclass(frozen=True)
class SourceRequest:
    component: str
    pin: SourcePin
    url: str
    """The URL actually fetched: the matrix's, a mirror's, or a relative path resolved to an absolute one."""
    sparse: tuple[str, ...] = ()
    """The only folders exported (fetched blob-less): the component's sparse path, if its spec names one."""
    mirrored: bool = False
    """The URL is a mirror's: the submodules come from mirrors too (submodule_url), never from upstream."""
    submodule_mirrors: tuple[tuple[str, str], ...] = ()
    """Explicit mirrors of submodules, by their path in the component (`--mirror aiter/3rdparty/ck=URL`)."""
    mirror_home: str = ""
    """For a submodule of a mirrored component: the component's mirror URL, beside which its submodules are."""

    def submodule_url(self, path: str, upstream: str) -> str:
        """Where a submodule at `path` (relative to the component) whose .gitmodules URL is `upstream` (absolute) is
        fetched: its explicit mirror; else, for a mirrored component, the repository of the same name beside the
        component's mirror (a mirror of ROCm/aiter at https://m/rocm/aiter.git serves composable_kernel.git as
        https://m/rocm/composable_kernel.git); else upstream."""
        explicit = dict(self.submodule_mirrors)
        if path in explicit:
            return explicit[path]
        if not self.mirrored:
            return upstream
        home = self.mirror_home or self.url
        return home.rstrip("/").rsplit("/", 1)[0] + "/" + upstream.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ExportedSource:
    component: str
    commit: str
    path: Path
    cached: bool
    commit_time: int = 0
    """The commit's committer time (Unix seconds): the SOURCE_DATE_EPOCH of what is built from it."""


def mirror_overrides(cli: list[str], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Per-component URL overrides: EPBUILD_MIRROR_<COMPONENT>=URL, then `--mirror component=URL` (wins); a
    submodule's own mirror is `--mirror component/path/in/component=URL`."""
    out: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith(MIRROR_ENV_PREFIX) and value:
            out[key[len(MIRROR_ENV_PREFIX):].lower().replace("_", "-")] = value
    for item in cli:
        name, sep, url = item.partition("=")
        if not sep or not name:
            raise SourceError(f"--mirror takes COMPONENT=URL, got {item!r}")
        out[name] = url
    for name, url in out.items():
        if not GIT_URL.fullmatch(url):
            raise SourceError(f"mirror for {name}: {url!r} is not an allowed repository URL "
                              "(https://, ssh://, git://, git@host:path, file:///path, ./ or ../ path)")
    return out


def resolve_url(url: str, base: Path) -> str:
    """Paths relative to the matrix file (./x, ../x) become file:// URLs; real URLs pass through.
    (A bare path would do for a plain fetch, but git cannot name a partial-clone promisor after one.)"""
    if url.startswith(("./", "../")):
        return (base / url).resolve().as_uri()
    return url


def requests_for(matrix: LoadedMatrix, components: list[str], mirrors: Mapping[str, str]) -> list[SourceRequest]:
    pins = matrix.model.components.pins()
    unknown = sorted({name.split("/", 1)[0] for name in mirrors} - set(pins))
    if unknown:
        raise SourceError(f"mirror given for unknown component(s) {', '.join(unknown)}; "
                          f"the matrix has {', '.join(pins)}")
    registry = matrix.model.registry
    return [
        SourceRequest(name, pins[name], resolve_url(mirrors.get(name, pins[name].repo), matrix.directory),
                      tuple(registry[name].sparse_paths(pins[name])), mirrored=name in mirrors,
                      submodule_mirrors=tuple((key.split("/", 1)[1], resolve_url(url, matrix.directory))
                                              for key, url in sorted(mirrors.items())
                                              if key.startswith(f"{name}/")))
        for name in components
    ]
