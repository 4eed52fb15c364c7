"""How a failed `docker buildx imagetools inspect` is read: only the registry's 404 for the very tag asked for is
"absent". The messages are buildx 0.13.1's own, recorded against docker-registry on 127.0.0.1 (a missing tag, no
login, a wrong password, a missing credential helper, a manifest whose config blob is gone, nothing listening);
tests/integration/test_registry*.py provoke the same cases for real."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from epbuild.registry import reads as registry

REF = "127.0.0.1:5932/t/small:nope"
MESSAGES = {
    "absent": f"ERROR: {REF}: not found",
    "no login": "ERROR: pull access denied, repository does not exist or may require authorization: authorization "
                "failed: no basic auth credentials",
    "wrong password": "ERROR: unexpected status from HEAD request to http://127.0.0.1:5932/v2/t/small/manifests/nope: "
                      "401 Unauthorized",
    "helper": 'ERROR: error getting credentials - err: exec: "docker-credential-epbuild-missing": executable file '
              "not found in $PATH, out: ``",
    "broken": "ERROR: failed to copy: httpReadSeeker: failed open: could not fetch content descriptor sha256:1d0021419"
              "0a1275f46a305f476972ba5ca735c801fa0a2458374f0baecab00be (application/vnd.oci.image.config.v1+json) "
              "from remote: not found",
    "other tag": "ERROR: 127.0.0.1:5932/t/small:other: not found",
    "down": 'ERROR: failed to do request: Head "http://127.0.0.1:5932/v2/t/small/manifests/nope": dial tcp '
            "127.0.0.1:5932: connect: connection refused",
}


def failing_with(monkeypatch: pytest.MonkeyPatch, stderr: str) -> None:
    def query(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", stderr + "\n")

    monkeypatch.setattr(registry, "query", query)


def test_only_the_tags_own_404_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    failing_with(monkeypatch, MESSAGES["absent"])
    assert registry.remote_image(REF) is None and registry.remote_digest(REF) is None


@pytest.mark.parametrize("case", ["no login", "wrong password", "helper"])
def test_a_refusal_is_unauthorised(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    failing_with(monkeypatch, MESSAGES[case])
    with pytest.raises(registry.RegistryUnauthorised) as raised:
        registry.remote_image(REF)
    assert MESSAGES[case].removeprefix("ERROR: ") in str(raised.value)


@pytest.mark.parametrize("case", ["broken", "other tag", "down"])
def test_anything_else_is_unreadable(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    failing_with(monkeypatch, MESSAGES[case])
    with pytest.raises(registry.RegistryUnreadable, match="cannot read 127.0.0.1:5932/t/small:nope"):
        registry.remote_digest(REF)
