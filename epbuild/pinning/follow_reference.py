"""`invoke pins`: the reference's files read from the reference component's exported source at its pin (the normal
fetch: sources cache, mirrors honoured), parsed (epbuild.pinning.dockerfile_model, epbuild.pinning.reference), compared
with the matrix (epbuild.pinning.reference_diff); `--check` fails on an unexplained difference, `--write` moves the
matrix to the reference through the round-trip editor and re-renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from epbuild.inputs import sources
from epbuild.inputs.source_requests import requests_for
from epbuild.model.matrix import LoadedMatrix
from epbuild.model.patterns import COMMIT
from epbuild.pinning import matrix_edit
from epbuild.pinning.dockerfile_model import parse
from epbuild.pinning.reference import Reference, read
from epbuild.pinning.reference_diff import DIFFERS, Resolved, Row, compare, unexplained
from epbuild.render import dockerfiles as render
from epbuild.util.commands import Runner
from epbuild.util.errors import EpbuildError

ALL_REFS = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]


class ReferenceError(EpbuildError):
    pass


@dataclass
class PinsReport:
    source: str
    rows: list[Row]
    written: list[Path] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"reference: {self.source}", f"  {'key':<34} {'matrix':<44} reference"]
        section = None
        for row in self.rows:
            if row.section != section:
                section = row.section
                lines.append(f"[{section}]")
            lines.append(row.line())
        missing = unexplained(self.rows)
        lines.append(f"{len(missing)} unexplained difference(s)" if missing else "no unexplained difference")
        if self.written:
            lines.append(f"wrote {', '.join(str(p) for p in self.written)}")
        return "\n".join(lines)


def reference_at(tree: Path, files: list[str], where: str) -> Reference:
    texts = []
    for name in files:
        path = tree / name
        if not path.is_file():
            raise ReferenceError(f"{where}: the reference file {name} does not exist at this pin ({path})")
        texts.append(parse(path.read_text(errors="replace"), f"{where}:{name}"))
    return read(texts)


def load(loaded: LoadedMatrix, root: Path, mirrors: dict[str, str]) -> tuple[Reference, str]:
    model = loaded.model
    if model.reference is None:
        raise ReferenceError(f"{loaded.path}: the matrix names no `reference:` to follow")
    name = model.reference.component
    if name not in model.components.pins():
        raise ReferenceError(f"{loaded.path}: reference.component: no component {name!r} in the matrix")
    request = requests_for(loaded, [name], mirrors)[0]
    exported = sources.SourceCache(root, Runner()).export(request)
    where = f"{name}@{request.pin.commit[:12]}"
    return reference_at(exported.path, list(model.reference.files), where), where


def resolve_refs(loaded: LoadedMatrix, ref: Reference, root: Path, mirrors: dict[str, str]) -> dict[str, Resolved]:
    """The commit of each reference ref that is a tag or branch rather than a commit, read from the component's
    repository (fetched into the sources cache; the matrix is not touched): a tag the pin carries needs no fetch."""
    pins = loaded.model.components.pins()
    out: dict[str, Resolved] = {}
    cache = sources.SourceCache(root, Runner())
    for component, wanted in ref.pins.items():
        pin = pins.get(component)
        if pin is None or COMMIT.fullmatch(wanted) or pin.tag == wanted:
            continue
        request = requests_for(loaded, [component], mirrors)[0]
        mirror = cache.fetch_refs(request, ALL_REFS)
        for rev, is_tag in ((f"refs/tags/{wanted}^{{commit}}", True),
                            (f"refs/remotes/origin/{wanted}^{{commit}}", False)):
            commit = cache.rev_parse(mirror, rev)
            if commit is not None:
                out[f"{component}:{wanted}"] = Resolved(commit, is_tag)
                break
        else:
            raise ReferenceError(f"{component}: the reference names {wanted!r}, which is no tag or branch of "
                                 f"{request.url}")
    return out


def pins(loaded: LoadedMatrix, root: Path, mirrors: dict[str, str], *, write: bool) -> PinsReport:
    ref, where = load(loaded, root, mirrors)
    resolved = resolve_refs(loaded, ref, root, mirrors)
    rows = compare(loaded.model, ref, resolved)
    report = PinsReport(f"{' + '.join(ref.files)}", rows)
    edits = [(e.path, e.value) for r in rows if r.status == DIFFERS for e in r.edits]
    if not write or not edits:
        return report
    text = loaded.path.read_text()
    new_text = matrix_edit.with_edits(text, loaded.path, edits)
    new_loaded = matrix_edit.validated(loaded.path, new_text)
    matrix_edit.write_atomically(loaded.path, new_text)
    rendering = render.render_matrix(new_loaded, root)
    render.write(rendering)
    report.rows = compare(new_loaded.model, ref, resolved)
    report.written = [loaded.path, rendering.out_dir]
    return report


def beside_bump(loaded: LoadedMatrix, tree: Path, where: str, root: Path, mirrors: dict[str, str]) -> list[str]:
    """For `invoke bump <reference component> REF`: the reference's pins at REF beside the matrix's."""
    assert loaded.model.reference is not None
    ref = reference_at(tree, list(loaded.model.reference.files), where)
    rows = compare(loaded.model, ref, resolve_refs(loaded, ref, root, mirrors))
    return [row.line() for row in rows]
