"""The matrix checks that span several keys: axis values the tables define, each component's arch and NIC
constraints, base names, selectors, and that some cell remains. Returns (key path, message) pairs."""

from __future__ import annotations

from typing import Any

from epbuild.model.cells import expand
from epbuild.model.patterns import split_arch
from epbuild.model.yamlfile import KeyPath


def cross_check(m: Any) -> list[tuple[KeyPath, str]]:
    out: list[tuple[KeyPath, str]] = []
    for name, base in m.bases.items():
        if base.digest and "@" in base.image:
            out.append((("bases", name, "digest"), "the image already names a digest (@sha256:...); pin it in one place"))
    components = {c.name: c for c in m.registry.components}
    pins = m.components.pins()
    if m.image.source_component not in pins:
        out.append((("image", "source_component"),
                    f"{m.image.source_component!r} is not a component of the matrix ({', '.join(pins)})"))
    for name, c in components.items():
        if c.nic_flag is None or name not in pins:
            continue
        for nic, info in m.nics.items():
            value = info.flags.get(name)
            if value is None:
                out.append((("nics", nic, "flags"), f"{nic} names no value for {name}; {name} takes one of "
                                                     f"{', '.join(c.nic_flag)} (add flags: {{{name}: ...}})"))
            elif value not in c.nic_flag:
                out.append((("nics", nic, "flags", name),
                            f"{value!r} is not a value {name} takes for the NIC; it takes {', '.join(c.nic_flag)}"))
    for name, c in components.items():
        if name in pins:
            out.extend((("components", name, *key), problem) for key, problem in c.matrix_check(pins[name], m))
    for nic, info in m.nics.items():
        for flagged in info.flags:
            if flagged not in components:
                out.append((("nics", nic, "flags", flagged), f"unknown component {flagged!r}"))
    for axis, values in (("arch", m.axes.arch), ("nic", m.axes.nic), ("base", m.axes.base)):
        seen: dict[frozenset[str], str] = {}
        for i, value in enumerate(values):
            same = frozenset(split_arch(value)) if axis == "arch" else frozenset([value])
            if same in seen:
                what = "" if seen[same] == value else f" (it names the same archs as {seen[same]!r})"
                out.append((("axes", axis, i), f"duplicate value {value!r} in axis {axis}{what}"))
            seen.setdefault(same, value)
    arch_bound = {name: c.archs for name, c in components.items() if c.archs is not None and name in pins}

    def check_arch(value: str, key: KeyPath) -> None:
        parts = split_arch(value)
        if len(set(parts)) != len(parts):
            out.append((key, f"{value!r} names an arch twice"))
        for part in parts:
            if part not in m.archs:
                out.append((key, f"unknown arch {part!r}; the archs table defines {', '.join(m.archs) or 'none'}"))
                continue
            refusing = [name for name, archs in arch_bound.items() if part not in archs]
            if refusing:
                allowed = sorted(set.intersection(*(set(arch_bound[n]) for n in refusing)))
                out.append((key, f"{' and '.join(refusing)} build only for {', '.join(allowed)} (their setup.py "
                                 f"drops any other arch); {part!r} is not allowed"))

    def check_table(value: str, key: KeyPath, table: dict[str, Any], what: str) -> None:
        if value not in table:
            out.append((key, f"unknown {what} {value!r}; the {what}s table defines {', '.join(table) or 'none'}"))

    for i, value in enumerate(m.axes.arch):
        check_arch(value, ("axes", "arch", i))
    for i, value in enumerate(m.axes.nic):
        check_table(value, ("axes", "nic", i), m.nics, "NIC")
    for i, value in enumerate(m.axes.base):
        check_table(value, ("axes", "base", i), m.bases, "base")
    several_bases = len(m.base_names) > 1
    for section in ("exclude", "include"):
        for i, sel in enumerate(getattr(m, section)):
            if sel.arch is None and sel.nic is None and sel.base is None:
                out.append(((section, i), "an entry must name an arch, a nic or a base"))
            if section == "include" and (sel.arch is None or sel.nic is None):
                out.append(((section, i), "an include entry adds one cell: it must name arch and nic"
                                          + (" (and a base, or it adds the cell on every base)" if several_bases
                                             else "")))
            if sel.arch is not None:
                check_arch(sel.arch, (section, i, "arch"))
            if sel.nic is not None:
                check_table(sel.nic, (section, i, "nic"), m.nics, "NIC")
            if sel.base is not None and sel.base not in m.base_names:
                out.append(((section, i, "base"), f"unknown base {sel.base!r}; the base axis has "
                                                  f"{', '.join(m.base_names)}"))
    if not out and not expand(m):
        out.append((("exclude",), "the excludes remove every cell of the matrix; at least one must remain"))
    return out
