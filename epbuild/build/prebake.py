"""Every check and preparation a build runs before bake, as ONE ordered list run by ONE function, `run`, on the
trees that will be built. `invoke build` runs it over its cells and every component they build; `invoke bump`
over the cells the moved pin reaches and that component alone, on the new pin's tree. So what bump calls fit is
exactly what build would accept: a check added to STEPS is run by both.

The steps stop at the first failure (nothing after it runs: a build fails in seconds, before any download), and
each one reports what it checked, or "not checked: <why>" where it could not run (the base image cannot be asked,
the package index cannot be reached): the steps after it still run, then build refuses it as a failure, and bump
reports it without calling it ok.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from epbuild.build import prebake_checks, stageinputs
from epbuild.build.prebake_checks import NotChecked
from epbuild.build.source_trees import Scope
from epbuild.util.errors import EpbuildError


@dataclass(frozen=True)
class Step:
    name: str
    """What the step checks, as reports list it."""
    run: Callable[[Scope], str]


STEPS: list[Step] = [
    Step("preflight hooks", prebake_checks.hooks),  # the components' own checks of the matrix (MoRI's NIC builds)
    Step("interface", prebake_checks.interfaces),  # flags, variables, CMake options, files against the tree
    Step("source checks", prebake_checks.source_checks),  # the components' own checks of the tree (MoRI's NIC flags)
    Step("NIC support", prebake_checks.nic_support),  # each cell's NIC against what each tree can drive
    Step("Rust toolchain", prebake_checks.rust_toolchains),  # the base's rustc against the tree's rust-toolchain.toml
    Step("scm version", stageinputs.versions),
    Step("git HEAD", stageinputs.git_heads),
    Step("source archives", stageinputs.source_archives),
    Step("wheelhouse", stageinputs.wheelhouses),  # build and runtime requirements, resolved against the base
    Step("native inputs", stageinputs.native_inputs),  # what a native step compiles from (vLLM: read from setup.py)
    Step("Rust crates", stageinputs.crates),  # cargo vendor --locked of the tree's Cargo.lock
    Step("vendor packages", stageinputs.vendors),  # the NIC vendor's signed repository, at the pinned versions
]
"""In order: the checks that read nothing but the trees first, so a mismatch fails before any download."""

OK, NOT_CHECKED, FAILED, NOTHING = "ok", "not checked", "FAILED", "nothing to check"


@dataclass
class Outcome:
    step: str
    status: str
    detail: str
    error: EpbuildError | None = None

    def lines(self) -> list[str]:
        if self.status == FAILED:
            return [f"{self.step}: {FAILED}", *(f"  {line.strip()}" for line in self.detail.splitlines())]
        return [f"{self.step}: {self.status}" + (f": {self.detail}" if self.detail else "")]


@dataclass
class Report:
    outcomes: list[Outcome]

    @property
    def failed(self) -> Outcome | None:
        return next((o for o in self.outcomes if o.status == FAILED), None)

    @property
    def not_checked(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == NOT_CHECKED]

    def lines(self) -> list[str]:
        return [line for o in self.outcomes for line in o.lines()]

    def raise_for_build(self) -> None:
        """What a build needs: every step done. The first failure, or step that could not run, is raised as the
        step raised it."""
        for outcome in self.outcomes:
            if outcome.error is not None:
                raise outcome.error


def run(scope: Scope, steps: Sequence[Step] | None = None) -> Report:
    """Runs every pre-bake step (STEPS, read when called) over `scope`, in order, until one fails."""
    outcomes: list[Outcome] = []
    stopped: str | None = None
    for step in STEPS if steps is None else steps:
        if stopped is not None:
            outcomes.append(Outcome(step.name, NOT_CHECKED, f"`{stopped}` did not pass"))
            continue
        try:
            done = step.run(scope)
        except NotChecked as exc:
            # Says nothing of the trees, so the steps after it still run; a build refuses it once they have.
            outcomes.append(Outcome(step.name, NOT_CHECKED, str(exc), exc))
            continue
        except EpbuildError as exc:
            outcomes.append(Outcome(step.name, FAILED, str(exc), exc))
            stopped = step.name
            continue
        if scope.runner.dry_run:
            outcomes.append(Outcome(step.name, NOT_CHECKED, "a dry run"))
        else:
            outcomes.append(Outcome(step.name, OK if done else NOTHING, done))
    return Report(outcomes)
