"""The image says what it is, and what it says is what was built: /opt/epbuild/manifest.json, the labels and
/app/versions.txt name the pins whose sources the built files come from (test_built_from_pins ties those pins to
the revision compiled into each library), each wheel's version line is the installed distribution's own metadata,
and the base image's own /app/versions.txt lines are kept."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from pins import installed_version


def test_manifest_names_the_built_pins(host: Any, expected: dict[str, Any]) -> None:
    manifest = host.file("/opt/epbuild/manifest.json")
    assert manifest.exists, "/opt/epbuild/manifest.json is missing"
    found = json.loads(manifest.content_string)
    assert (found["cell"], found["archs"], found["nic"]) == (expected["cell"], expected["archs"], expected["nic"])
    commits = {name: entry["commit"] for name, entry in found["components"].items()}
    assert commits == {name: source["commit"] for name, source in expected["sources"].items()}


def test_labels_name_the_built_pins_and_the_manifests_key(host: Any, image_config: dict[str, Any],
                                                           expected: dict[str, Any]) -> None:
    labels = image_config.get("Labels") or {}
    for name, source in expected["sources"].items():
        assert labels.get(f"io.epbuild.pin.{name}") == source["commit"], f"label of {name}'s pin"
    manifest = json.loads(host.file("/opt/epbuild/manifest.json").content_string)
    assert labels.get("io.epbuild.content-key") == manifest["content_key"] and len(manifest["content_key"]) == 64
    assert labels.get("io.epbuild.cell") == expected["cell"]


def versions_lines(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def test_versions_txt_lists_every_pin_and_each_wheels_own_version(host: Any, expected: dict[str, Any]) -> None:
    lines = versions_lines(host.file("/app/versions.txt").content_string)
    for name, source in expected["sources"].items():
        assert lines.get(f"{name.upper().replace('-', '_')}_COMMIT") == source["commit"], f"{name}'s commit line"
    wheel_lines = {key[: -len("_VERSION")]: value for key, value in lines.items() if key.endswith("_VERSION")}
    assert wheel_lines, "/app/versions.txt has no wheel version lines"
    for stem, version in wheel_lines.items():
        assert installed_version(host, stem.lower()) == version, f"{stem}_VERSION vs the installed distribution"


def test_versions_txt_keeps_the_base_images_lines(host: Any, expected: dict[str, Any]) -> None:
    base = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", expected["base_image"],
                           "-c", "cat /app/versions.txt 2>/dev/null || true"], capture_output=True, text=True,
                          check=True).stdout
    ours = host.file("/app/versions.txt").content_string
    assert ours.startswith(base), "/app/versions.txt lost or reordered the base image's own lines"
    assert len(ours) > len(base)
