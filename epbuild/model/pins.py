"""What every pinned component has in the matrix: a repository, a commit and maybe a tag. Each component's own
pin model (in its folder under epbuild/components/) extends SourcePin with its options."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from epbuild.model.patterns import Commit, GitUrl, Reason, Ref


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Requirement(Strict):
    commit: Commit = Field(description="A commit the pin must contain (be, or descend from).")
    reason: Reason = Field(description="Why: printed when a pin lacks it.")


class SourcePin(Strict):
    repo: GitUrl = Field(description="Git repository URL.")
    commit: Commit = Field(
        description="The pinned commit: 7 to 40 hex digits (all 40 let the fetch ask for exactly that commit). "
        "A tag alone is not a pin: a tag can move, and the image's content key would not."
    )
    tag: Ref | None = Field(None, description="The tag the commit carries; checked against the commit.")
    requires: list[Requirement] = Field(
        default_factory=list,
        description="Commits the pin must contain, each with its reason; checked against the pin's history when "
        "it is fetched and when it is bumped.")
    reference_differs: dict[str, Reason] = Field(
        default_factory=dict,
        description="Keys of this pin (commit, or an option such as gfx942_fp8_fnuz_max) that deliberately differ "
        "from the reference the matrix follows (`reference:`), each with the reason `invoke pins` prints.")

    @model_validator(mode="after")
    def _differs_names_keys_of_this_pin(self) -> "SourcePin":
        keys = set(type(self).model_fields) - {"repo", "requires", "reference_differs"}
        unknown = sorted(set(self.reference_differs) - keys)
        if unknown:
            raise ValueError(f"reference_differs names {', '.join(unknown)}, which this pin has no key for; "
                             f"allowed: {', '.join(sorted(keys))}")
        return self
