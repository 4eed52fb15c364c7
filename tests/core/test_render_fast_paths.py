"""The render's fast paths (issue 25) write what the standard library would: the bake file is json.dumps(indent=2)
character for character, and the recipe key is the sha256 of json.dumps(payload, sort_keys=True) with each stage text as its
sha256, both compared here with the standard library's own output."""

from __future__ import annotations

import hashlib
import json

from epbuild.cli import project
from epbuild.inputs.resolve import pinned_digest
from epbuild.model import stagegraph
from epbuild.render import bakefile, manifest

OFFLINE = "examples/offline/matrix.yaml"


def test_the_bake_file_is_what_json_dumps_writes() -> None:
    rendering = project.rendering(OFFLINE)
    assert rendering.bake == json.dumps(json.loads(rendering.bake), indent=2) + "\n"
    odd = {"é": ["ü", 1, 2.5, True, None, [], {}], "nested": {"a": {"b": ["c", {"d": "\"\\\n"}]}}, "empty": ""}
    assert bakefile.indented_json(odd) == json.dumps(odd, indent=2)
    assert bakefile.indented_json(odd, memo={}) == json.dumps(odd, indent=2)
    assert bakefile.bake_json([], context_root="images") == json.dumps(
        {"group": {"default": {"targets": []}}, "target": {}}, indent=2) + "\n"


def test_the_recipe_key_is_the_hash_of_the_sorted_payload() -> None:
    for rc in project.rendering(OFFLINE).cells:
        plan = rc.plan
        keyless = [*list(rc.stages.values())[:-1],
                   rc.stages["final"].replace(f'{manifest.RECIPE_LABEL}="{rc.key}"', f'{manifest.RECIPE_LABEL}=""')]
        pins = {name: pin.model_dump(mode="json", exclude={"commit", "requires"})
                for name, pin in stagegraph.built_pins(plan).items()}
        payload = {"stages": [hashlib.sha256(text.encode()).hexdigest() for text in keyless], "facts": manifest.facts(plan), "base_digest": pinned_digest(plan.base),
                   "pins": pins}
        assert rc.key == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest(), rc.cell.name
        assert rc.stages["final"].count(rc.key) == 1
