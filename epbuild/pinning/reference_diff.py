"""The matrix beside the reference it follows: one row per compared key (a component's pin and flags, the NIC vendor
repositories and versions, the final image's environment), each the same, explained (`reference_differs`,
`reference.differs`) or different; and the edits that move the matrix to the reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from epbuild.components.deepep import DeepepPin, flag_uses
from epbuild.components.nixl import NixlPin
from epbuild.components.ucx import SET_BY_THE_STAGE, UcxPin
from epbuild.model.matrix import MatrixBase
from epbuild.model.patterns import COMMIT
from epbuild.pinning.reference import Reference

SAME, EXPLAINED, DIFFERS, INFO = "same", "explained", "DIFFERS", "info"
DEEPEP_PER_CELL = {"--variant", "--nic"}
"""DeepEP options that are not the pin's: the variant (always rocm) and the NIC (per cell: nics.<nic>.flags)."""


@dataclass(frozen=True)
class Edit:
    """Sets (value) or removes (None) the key `path` of the matrix."""

    path: tuple[str, ...]
    value: Any


@dataclass(frozen=True)
class Resolved:
    """What a reference's tag or branch names in the component's repository."""

    commit: str
    is_tag: bool


@dataclass(frozen=True)
class Row:
    section: str
    key: str
    ours: str
    reference: str
    status: str
    reason: str = ""
    edits: tuple[Edit, ...] = ()

    def line(self) -> str:
        mark = {SAME: " ", EXPLAINED: "~", DIFFERS: "!", INFO: " "}[self.status]
        text = f"{mark} {self.key:<34} {self.ours:<44} {self.reference}"
        if self.status == EXPLAINED:
            text += f"\n    reference_differs: {self.reason}"
        elif self.status == DIFFERS:
            # A list or mapping option (UCX's configure flags, NIXL's meson options) is not rewritten by --write.
            text += "   <- differs" if self.edits else "   <- differs (edit by hand)"
        return text


def _same_commit(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def same_ref(pin: Any, ref: str, resolved: Resolved | None) -> bool:
    """A reference ref names the pin: its tag, a commit one is a prefix of the other, or a tag or branch that
    resolves to the pinned commit."""
    if pin.tag and ref == pin.tag:
        return True
    if resolved is not None:
        return _same_commit(pin.commit, resolved.commit)
    return bool(COMMIT.fullmatch(ref)) and _same_commit(pin.commit, ref)


def _status(differs: bool, reasons: dict[str, str], key: str) -> tuple[str, str]:
    if not differs:
        return SAME, ""
    if key in reasons:
        return EXPLAINED, reasons[key]
    return DIFFERS, ""


def _deepep_options(pin: DeepepPin) -> dict[str, tuple[str | None, str]]:
    """The pin's own setup.py options: flag -> (value, the pin field that asks for it)."""
    return {u.name: (u.value, u.key.rsplit(".", 1)[-1]) for u in flag_uses(pin, "") if u.name not in DEEPEP_PER_CELL}


def _field_for_flag(flag: str) -> str | None:
    """The DeepEP pin field whose description names `flag` (the model documents each option by its flag)."""
    for name, info in DeepepPin.model_fields.items():
        if (info.description or "").split(" ")[0] == flag:
            return name
    return None


def _option_values(words: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--"):
            name, sep, value = word.partition("=")
            if sep:
                out[name] = value
            elif i + 1 < len(words) and not words[i + 1].startswith("-"):
                out[name] = words[i + 1]
                i += 1
            else:
                out[name] = None
        i += 1
    return out


def _flag_value(value: Any) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() else number


def _shown(value: str | None) -> str:
    """A flag's value as the table shows it: a flag without a value is "on"."""
    return "on" if value is None else value


def deepep_rows(pin: DeepepPin, ref: Reference) -> list[Row]:
    ours = _deepep_options(pin)
    theirs = {k: v for k, v in _option_values(ref.flags.get("deepep", [])).items() if k not in DEEPEP_PER_CELL}
    rows = []
    for flag in sorted(set(ours) | set(theirs)):
        field = ours[flag][1] if flag in ours else _field_for_flag(flag)
        have = _shown(ours[flag][0]) if flag in ours else "-"
        want = _shown(theirs[flag]) if flag in theirs else "-"
        status, reason = _status(have != want, pin.reference_differs, field or flag)
        edits: tuple[Edit, ...] = ()
        if field is not None and have != want:
            value = (True if theirs[flag] is None else _flag_value(theirs[flag])) if flag in theirs else None
            if value is None and isinstance(getattr(pin, field), bool):
                value = False
            edits = (Edit(("components", "deepep", field), value),)
        rows.append(Row("deepep", f"deepep {flag}", have, want, status, reason, edits))
    return rows


def compare(model: MatrixBase, ref: Reference, resolved: dict[str, Resolved] | None = None) -> list[Row]:
    """Every compared key. `resolved` holds what each reference tag or branch names, by "component:ref"."""
    resolved = resolved or {}
    rows: list[Row] = []
    pins = model.components.pins()
    for component, wanted in ref.pins.items():
        pin = pins.get(component)
        if pin is None:
            continue
        ours = pin.tag or pin.commit[:12]
        named = resolved.get(f"{component}:{wanted}")
        status, reason = _status(not same_ref(pin, wanted, named), pin.reference_differs, "commit")
        edits: tuple[Edit, ...] = ()
        if status != SAME:
            if named is not None:
                edits = (Edit(("components", component, "commit"), named.commit),
                         Edit(("components", component, "tag"), wanted if named.is_tag else None))
            elif COMMIT.fullmatch(wanted):
                edits = (Edit(("components", component, "commit"), wanted),
                         Edit(("components", component, "tag"), None))
        shown = wanted if named is None else f"{wanted} = {named.commit[:12]}"
        rows.append(Row(component, f"{component} pin", ours, shown, status, reason, edits))
        if component == "deepep" and isinstance(pin, DeepepPin):
            rows += deepep_rows(pin, ref)
        elif component == "ucx" and isinstance(pin, UcxPin):
            rows += ucx_rows(pin, ref)
        elif component == "nixl" and isinstance(pin, NixlPin):
            rows += nixl_rows(pin, ref)
        elif ref.flags.get(component):
            rows.append(Row(component, f"{component} build", "(the stage's own line)",
                            " ".join(ref.flags[component]), INFO))
    rows += vendor_rows(model, ref)
    rows += env_rows(model, ref)
    return rows


def ucx_rows(pin: UcxPin, ref: Reference) -> list[Row]:
    """UCX's configure line: the install prefix, and each flag on or off. `--with-rocm` is the base's ROCm path,
    which the stage passes itself (the reference's ${ROCM_PATH}), so it is no pin's to compare."""
    flags = ref.flags.get("ucx", [])
    if not flags:
        return []
    prefix = next((f.split("=", 1)[1] for f in flags if f.startswith("--prefix=")), None)
    rows = []
    if prefix is not None:
        status, reason = _status(prefix != pin.install_prefix, pin.reference_differs, "install_prefix")
        rows.append(Row("ucx", "ucx --prefix", pin.install_prefix, prefix, status, reason,
                        (Edit(("components", "ucx", "install_prefix"), prefix),) if status != SAME else ()))
    theirs = [f for f in flags if f.split("=", 1)[0] not in SET_BY_THE_STAGE]
    ours = list(pin.configure_flags)
    for flag in theirs + [f for f in ours if f not in theirs]:
        have, want = ("on" if flag in ours else "-"), ("on" if flag in theirs else "-")
        status, reason = _status(have != want, pin.reference_differs, "configure_flags")
        rows.append(Row("ucx", f"ucx {flag}", have, want, status, reason))
    return rows


def nixl_rows(pin: NixlPin, ref: Reference) -> list[Row]:
    """NIXL's meson -D options; `ucx_path` is the ucx component's install_prefix, compared on UCX's row."""
    theirs = dict(f.removeprefix("-D").split("=", 1) for f in ref.flags.get("nixl", []) if "=" in f)
    theirs.pop("ucx_path", None)
    rows = []
    for option in list(theirs) + [o for o in pin.meson_options if o not in theirs]:
        have, want = pin.meson_options.get(option, "-"), theirs.get(option, "-")
        status, reason = _status(have != want, pin.reference_differs, "meson_options")
        rows.append(Row("nixl", f"nixl -D{option}", have, want, status, reason))
    return rows


def vendor_rows(model: MatrixBase, ref: Reference) -> list[Row]:
    rows = []
    differs = model.reference.differs if model.reference else {}
    for repo in ref.vendors:
        nic = next((n for n, info in model.nics.items()
                    if info.vendor is not None and info.vendor.repo.url.rstrip("/") == repo.url.rstrip("/")), None)
        if nic is None:
            key = f"reference.vendor.{repo.url}"
            status, reason = _status(True, differs, key)
            rows.append(Row("vendor", f"vendor {repo.url.split('/')[2]}", "(no NIC uses it)",
                            f"{repo.url} {repo.suite}", status, reason))
            continue
        vendor = model.nics[nic].vendor
        assert vendor is not None
        for package, version in repo.packages.items():
            have = vendor.packages.get(package)
            # The reference names no version where it installs whatever the repository holds: any pin agrees.
            differ = have is None or (version is not None and have != version)
            status, reason = _status(differ, differs, f"nics.{nic}.vendor")
            rows.append(Row("vendor", f"nics.{nic} {package}", have or "-", version or "(any)", status, reason))
    return rows


def env_rows(model: MatrixBase, ref: Reference) -> list[Row]:
    rows = []
    differs = model.reference.differs if model.reference else {}
    for name, value in ref.env.items():
        have = model.runtime_env.get(name)
        key = f"runtime_env.{name}"
        status, reason = _status(have != value, differs, key)
        rows.append(Row("env", f"ENV {name}", have or "-", value, status, reason,
                        (Edit(("runtime_env", name), value),) if status != SAME else ()))
    return rows


def unexplained(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.status == DIFFERS]
