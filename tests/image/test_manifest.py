"""The image says what it is: /opt/epbuild/manifest.json, /app/versions.txt and its labels match the matrix."""

from __future__ import annotations

import json
from typing import Any


def test_manifest_matches_the_matrix(host: Any, expected: dict[str, Any]) -> None:
    manifest = host.file("/opt/epbuild/manifest.json")
    assert manifest.exists, "/opt/epbuild/manifest.json is missing"
    found = json.loads(manifest.content_string)
    for key, value in expected["record"].items():
        assert found.get(key) == value, f"manifest {key}: image has {found.get(key)!r}, matrix says {value!r}"
    assert found == expected["record"]


def test_labels_carry_pins_and_content_key(image_config: dict[str, Any], expected: dict[str, Any]) -> None:
    labels = image_config.get("Labels") or {}
    for name, value in expected["labels"].items():
        assert labels.get(name) == value, f"label {name}: image has {labels.get(name)!r}, expected {value!r}"


def test_versions_txt_lists_every_pin(host: Any, expected: dict[str, Any]) -> None:
    text = host.file("/app/versions.txt").content_string
    for name, pin in expected["components"].items():
        assert pin["commit"] in text, f"/app/versions.txt does not record {name}"
    assert expected["content_key"] in text
