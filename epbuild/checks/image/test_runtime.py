"""The run-time environment the matrix sets (vLLM's reference settings plus VLLM_ROCM_USE_AITER=1)."""

from __future__ import annotations

from typing import Any


def test_image_environment(image_config: dict[str, Any], expected: dict[str, Any]) -> None:
    env = dict(item.split("=", 1) for item in image_config.get("Env") or [])
    for name, value in expected["runtime_env"].items():
        assert env.get(name) == value, f"{name}: image has {env.get(name)!r}, the matrix sets {value!r}"


def test_a_login_shell_keeps_the_image_environment(host: Any, image_config: dict[str, Any],
                                                   expected: dict[str, Any]) -> None:
    # `docker exec` gets exactly the image's Env (test_image_environment checks those values); a user's login
    # shell (`docker run -it <image> bash -l`) also reads /etc/profile and /etc/profile.d, which must not undo it.
    image_env = dict(item.split("=", 1) for item in image_config.get("Env") or [])
    result = host.run("bash -lc 'env -0'")
    assert result.rc == 0, result.stderr
    seen = dict(item.split("=", 1) for item in result.stdout.split("\0") if "=" in item)
    changed = {k: (image_env.get(k), seen.get(k)) for k in expected["runtime_env"] if seen.get(k) != image_env.get(k)}
    assert not changed, f"a login shell changes the image's run-time environment (image, login shell): {changed}"
