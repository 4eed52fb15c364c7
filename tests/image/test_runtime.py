"""The run-time environment the matrix sets (vLLM's reference settings plus VLLM_ROCM_USE_AITER=1)."""

from __future__ import annotations

from typing import Any


def test_image_environment(image_config: dict[str, Any], expected: dict[str, Any]) -> None:
    env = dict(item.split("=", 1) for item in image_config.get("Env") or [])
    for name, value in expected["runtime_env"].items():
        assert env.get(name) == value, f"{name}: image has {env.get(name)!r}, the matrix sets {value!r}"


def test_environment_inside_a_running_container(host: Any, expected: dict[str, Any]) -> None:
    seen = host.environment()
    assert {k: seen.get(k) for k in expected["runtime_env"]} == expected["runtime_env"]
