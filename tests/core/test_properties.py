"""Property tests: any valid matrix renders, and a stage's text depends only on what the stage graph says it
uses (the cell facts in its spec's `uses`, and the parent it builds FROM), so BuildKit shares it across cells."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epbuild.model import stagegraph
from epbuild.model.cells import expand
from epbuild.model.crosscheck import cross_check
from epbuild.model.matrix import Matrix
from epbuild.model.plan import CellPlan
from epbuild.render.dockerfiles import render_cell

hexes = st.text("0123456789abcdef", min_size=7, max_size=40)
packages = st.lists(st.from_regex(r"[a-z][a-z0-9-]{2,12}", fullmatch=True), max_size=3)
NICS = ("cx7", "io", "thor2", "cx8")


@st.composite
def vendors(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "repo": {"url": "https://vendor.example.org/" + draw(st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
                 "suite": draw(st.sampled_from(["jammy", "noble"]))},
        "key": {"url": "https://vendor.example.org/key.asc",
                "fingerprint": draw(st.from_regex(r"[0-9A-F]{40}", fullmatch=True))},
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
    nics = draw(st.lists(st.sampled_from(NICS), min_size=1, max_size=4, unique=True))
    nic_table = {}
    for nic in NICS:
        nic_table[nic] = {"provider": draw(st.sampled_from(["mlx5", "ionic", "bnxt_re"])),
                          "provider_library": "libx", "rdma_core": draw(st.sampled_from(["source", "distribution"])),
                          "flags": {"deepep": draw(st.sampled_from(["cx7", "io", "thor2"])),
                                    "rocshmem": draw(st.sampled_from(["GDA_MLX5", "GDA_IONIC", "GDA_BNXT"]))},
                          "vendor": draw(st.one_of(st.just("none"), vendors()))}

    def pin() -> dict[str, Any]:
        return {"repo": "https://example.org/x/" + draw(st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
                "commit": draw(hexes)}

    components: dict[str, Any] = {
        "rdma-core": pin(), "rocshmem": pin(),
        "deepep": {**pin(), "explicit_ctx": draw(st.booleans()), "enable_mpi": draw(st.booleans())},
        "vllm": {**pin(), "triton_kernels": {"url": "https://example.org/t.tar.gz", "sha256": "0" * 64,
                                             "member": "t/python/triton_kernels/triton_kernels"}},
    }
    for optional in ("mori", "aiter"):
        if draw(st.booleans()):
            components[optional] = pin()
    if "mori" in components:
        providers = sorted({info["provider"] for info in nic_table.values()})
        flagged = draw(st.lists(st.sampled_from(providers), unique=True))
        components["mori"]["nic_build_flags"] = {p: f"USE_{p.upper()}" for p in flagged}
    bases = {name: {"image": f"acme/base:{name}", "rocm_path": draw(st.sampled_from(["/opt/rocm", "/usr"])),
                    "build_packages": draw(packages)}
             for name in draw(st.lists(st.sampled_from(["one", "two"]), min_size=1, max_size=2, unique=True))}
    excludes = draw(st.lists(st.fixed_dictionaries({"nic": st.sampled_from(nics)}), max_size=1))
    return {
        "image": {"name": "acme/ep", "registry": "registry.example.org"},
        "bases": bases,
        "axes": {"arch": arch_values, "nic": nics},
        "exclude": excludes,
        "archs": {"gfx942": {"gpus": ["MI300X"], "agent_pool": "p1"}, "gfx950": {"gpus": ["MI355X"], "agent_pool": "p2"}},
        "nics": nic_table,
        "components": components,
    }


def scope(stage: stagegraph.Stage, plan: CellPlan) -> tuple[Any, ...]:
    """What the graph says a stage's text may depend on: the facts it uses and the stage it starts FROM."""
    facts = plan.facts_for(stage.name)
    return (tuple(facts[k] for k in stage.uses), stagegraph.parent(stage, plan))


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
        for stage in stagegraph.stages_for(rc.plan):
            if stage.name == stagegraph.FINAL:
                continue
            key = scope(stage, rc.plan)
            texts[(stage.name, key)].add(rc.stages[stage.name])
            by_stage[stage.name][key] = rc.stages[stage.name]
        assert ("rdma-core" in rc.stages) == (rc.plan.nic.rdma_core == "source")
        assert ("vendor" in rc.stages) == (rc.plan.vendor is not None)
        if "mori" in rc.stages:
            # MoRI builds per NIC exactly where its pin compiles this NIC's vendor library in.
            flagged = rc.plan.vendor is not None and rc.plan.nic.provider in rc.plan.pins["mori"].nic_build_flags
            # Its stages (its requirements stage first) start from `vendor` there: walk down to the first.
            by_name = {s.name: s for s in stagegraph.stages_for(rc.plan)}
            start = stagegraph.parent(by_name["mori"], rc.plan)
            while start is not None and stagegraph.component_of(start) == "mori":
                start = stagegraph.parent(by_name[start], rc.plan)
            assert (start == "vendor") == flagged
    for (stage_name, key), variants in texts.items():
        assert len(variants) == 1, f"stage {stage_name} differs between cells with the same {key}"
    for stage_name, variants in by_stage.items():
        # The converse: cells that differ in what a stage uses get different text (the value reaches it).
        assert len(set(variants.values())) == len(variants), stage_name
    assert len({rc.key for rc in rendered}) == len(rendered)
    identities = {rc.cell.name: stagegraph.stage_identities(rc) for rc in rendered}
    for a in rendered:
        for b in rendered:
            shared = set(identities[a.cell.name].values()) & set(identities[b.cell.name].values())
            if a.cell.base != b.cell.base:
                assert not shared, f"{a.cell.name} and {b.cell.name} share a stage across bases"
            elif a.cell.archs == b.cell.archs and "vllm" in a.stages:
                # Same base and archs: vLLM's wheel is the same work whatever the NIC.
                assert identities[a.cell.name]["vllm"] == identities[b.cell.name]["vllm"]
