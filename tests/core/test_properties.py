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
def matrices(draw: st.DrawFn) -> dict[str, Any]:
    arch_values = draw(st.lists(st.sampled_from(["gfx942", "gfx950", "gfx942+gfx950"]), min_size=1, max_size=3,
                                unique=True))
    nics = draw(st.lists(st.sampled_from(["cx7", "io", "thor2"]), min_size=1, max_size=3, unique=True))
    nic_table = {}
    for nic in ("cx7", "io", "thor2"):
        source = nic != "thor2" and draw(st.booleans())
        nic_table[nic] = {"provider": PROVIDERS[nic], "rdma_core": "source" if source else "distribution",
                          "vendor_packages": draw(packages)}
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
    if stage in ("mori", "aiter", "vllm"):
        return (plan.cell.archs,)
    if stage == "rocshmem":
        return (plan.cell.archs, plan.rdma_core_from_source)
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
    for (stage, scope), variants in texts.items():
        assert len(variants) == 1, f"stage {stage} differs between cells with the same {scope}"
    for stage in ("rocshmem", "deepep", "mori", "aiter", "vllm"):
        # The converse: cells that differ in what a stage uses get different text (the value reaches it).
        variants = by_stage.get(stage, {})
        assert len(set(variants.values())) == len(variants)
    assert len({rc.key for rc in rendered}) == len(rendered)
