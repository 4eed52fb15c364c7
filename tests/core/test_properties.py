"""Property tests: any valid matrix renders, and a stage's text depends only on the cell values it uses."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epbuild.matrix import Matrix, cross_check
from epbuild.render import render_cell
from epbuild.cells import expand
from epbuild.plan import CellPlan

hexes = st.text("0123456789abcdef", min_size=7, max_size=40)
packages = st.lists(st.from_regex(r"[a-z][a-z0-9-]{2,12}", fullmatch=True), max_size=3)
PROVIDERS = {"cx7": "mlx5", "io": "ionic", "thor2": "bnxt_re"}


@st.composite
def vendors(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "repo": {"url": "https://vendor.example.org/" + draw(st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
                 "suite": draw(st.sampled_from(["jammy", "noble"]))},
        "key": {"url": "https://vendor.example.org/key.asc", "fingerprint": draw(st.from_regex(r"[0-9A-F]{40}",
                                                                                               fullmatch=True))},
        "packages": draw(st.dictionaries(st.from_regex(r"[a-z][a-z0-9-]{2,12}", fullmatch=True),
                                         st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,3}", fullmatch=True),
                                         min_size=1, max_size=2)),
        "post_install": draw(st.lists(st.fixed_dictionaries(
            {"copy_files": st.just("/usr/local/lib/x86_64-linux-gnu/libv*"), "to": st.just("/usr/local/lib")}),
            max_size=1)),
    }


@st.composite
def matrices(draw: st.DrawFn) -> dict[str, Any]:
    arch_values = draw(st.lists(st.sampled_from(["gfx942", "gfx950", "gfx942+gfx950"]), min_size=1, max_size=3,
                                unique=True))
    nics = draw(st.lists(st.sampled_from(["cx7", "io", "thor2"]), min_size=1, max_size=3, unique=True))
    nic_table = {}
    for nic in ("cx7", "io", "thor2"):
        source = nic != "thor2" and draw(st.booleans())
        nic_table[nic] = {"provider": PROVIDERS[nic], "rdma_core": "source" if source else "distribution",
                          "vendor": draw(st.one_of(st.just("none"), vendors()))}
    def pin() -> dict[str, Any]:
        return {"repo": "https://example.org/x/" + draw(st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
                "commit": draw(hexes)}
    components: dict[str, Any] = {
        "rdma-core": pin(), "rocshmem": pin(),
        "deepep": {**pin(), "explicit_ctx": draw(st.booleans()), "enable_mpi": draw(st.booleans())},
        "vllm": pin(),
    }
    for optional in ("mori", "aiter"):
        if draw(st.booleans()):
            components[optional] = pin()
    if "mori" in components:
        with_vendor = sorted(PROVIDERS[n] for n, info in nic_table.items() if info["vendor"] != "none")
        flagged = draw(st.lists(st.sampled_from(with_vendor), unique=True)) if with_vendor else []
        components["mori"]["nic_build_flags"] = {p: f"USE_{p.upper()}" for p in flagged}
    excludes = draw(st.lists(st.fixed_dictionaries({"nic": st.sampled_from(nics)}), max_size=1))
    return {
        "image": {"name": "acme/ep", "registry": "registry.example.org"},
        "base": {"image": "acme/base:" + draw(st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True)),
                 "rocm_path": draw(st.sampled_from(["/opt/rocm", "/usr"])), "build_packages": draw(packages)},
        "axes": {"arch": arch_values, "nic": nics},
        "exclude": excludes,
        "archs": {"gfx942": {"gpus": ["MI300X"], "agent_pool": "p1"}, "gfx950": {"gpus": ["MI355X"], "agent_pool": "p2"}},
        "nics": nic_table,
        "components": components,
    }


def stage_scope(stage: str, plan: CellPlan) -> tuple[Any, ...]:
    """What a stage's text may depend on: the rule that lets BuildKit share stages across cells."""
    if stage in ("base", "rdma-core"):
        return ()
    if stage == "vendor":
        assert plan.vendor is not None
        return (plan.rdma_core_from_source, plan.vendor.digest())
    if stage == "mori":
        # NIC-independent unless the pinned MoRI compiles this NIC's vendor library in.
        return (plan.cell.archs, plan.mori_vendor_flag)
    if stage in ("aiter", "vllm"):
        return (plan.cell.archs,)
    if stage == "rocshmem":
        # The NIC userspace it builds on: vendor (its identity reaches it through the parent), rdma-core or base.
        return (plan.cell.archs, "vendor" if plan.vendor else plan.rdma_core_from_source)
    if stage == "deepep":
        return (plan.cell.archs, plan.cell.nic)
    return (plan.cell.name,)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(matrices())
def test_any_valid_matrix_renders_and_shares_stages(data: dict[str, Any]) -> None:
    matrix = Matrix.model_validate(data)
    problems = cross_check(matrix)
    cells = expand(matrix)
    if not cells:
        assert problems and "remove every cell" in problems[-1][1]
        return
    assert problems == []
    rendered = [render_cell(CellPlan(c, matrix), "matrix.yaml") for c in cells]
    texts: dict[tuple[str, Any], set[str]] = defaultdict(set)
    by_stage: dict[str, dict[Any, str]] = defaultdict(dict)
    for rc in rendered:
        assert rc.dockerfile.count(" AS final\n") == 1
        for stage, text in rc.stages.items():
            scope = stage_scope(stage, rc.plan)
            texts[(stage, scope)].add(text)
            by_stage[stage][scope] = text
        assert ("rdma-core" in rc.stages) == rc.plan.rdma_core_from_source
        assert ("vendor" in rc.stages) == (rc.plan.vendor is not None)
    for (stage, scope), variants in texts.items():
        assert len(variants) == 1, f"stage {stage} differs between cells with the same {scope}"
    for stage in ("vendor", "rocshmem", "deepep", "mori", "aiter", "vllm"):
        # The converse: cells that differ in what a stage uses get different text (the value reaches it).
        variants = by_stage.get(stage, {})
        assert len(set(variants.values())) == len(variants)
    assert len({rc.key for rc in rendered}) == len(rendered)
