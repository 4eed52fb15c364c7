"""The offline example's vendor repository through the real CLI: a good one is fetched and verified; a wrong key
fingerprint, a tampered Release or a pinned version the repository lacks stops `invoke build` with one clear
error before any stage runs (no bake, no image), and leaves nothing cached."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from epbuild.model.vendor import VendorUserspace
from epbuild.model.yamlfile import dump_yaml
from epbuild.offline import matrix_variant
from epbuild.offline.vendor_apt_repo import REPO_DIR, serve
from epbuild.util.paths import vendor_dir

from harness import OFFLINE, ROOT, invoke

# Each pins stand-in commits through matrix_variant, which reads the stand-ins' commits.json.
pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("stand_in_repos")]
IMAGE = "epbuild-vendor-checks/stack"


@pytest.fixture(scope="module")
def sources_fetched(docker_engine: None) -> str:
    """`invoke sources` prepares the example (its vendor repository included) and fetches thor2's packages."""
    return invoke("sources", "--matrix", OFFLINE, "--cell", "gfx950-thor2-sid", "--cell", "gfx950-io-sid", check=True).out


def test_sources_fetch_and_verify_each_nics_vendor_packages(sources_fetched: str) -> None:
    lines = [line.split() for line in sources_fetched.splitlines() if line.startswith("vendor ")]
    assert sorted(line[1] for line in lines) == ["io", "thor2"]
    for _, nic, path, *_ in lines:
        debs = sorted(p.name for p in Path(path).glob("*.deb"))
        served = sorted(p.name for p in REPO_DIR.rglob("*.deb") if ("bnxt" in p.name) == (nic == "thor2"))
        assert debs == served
        for deb in debs:
            assert (Path(path) / deb).read_bytes() == next(REPO_DIR.rglob(deb)).read_bytes()


@pytest.fixture
def variant(tmp_path: Path, sources_fetched: str) -> Callable[[Callable[[dict[str, Any]], None]], Path]:
    def make(edit: Callable[[dict[str, Any]], None]) -> Path:
        path = matrix_variant(tmp_path / "variant", image_name=IMAGE)
        data = yaml.safe_load(path.read_text())
        edit(data["nics"]["thor2"]["vendor"])
        path.write_text(dump_yaml(data))
        invoke("render", "--matrix", str(path), check=True)
        return path

    return make


def fails_before_any_stage(matrix: Path, *fragments: str) -> None:
    result = invoke("build", "--matrix", str(matrix), "--cell", "gfx950-thor2-sid", "--quiet")
    assert result.code == 2, f"exit {result.code}:\n{result.out[-2000:]}\n{result.err[-2000:]}"
    error = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(error) == 1, result.err[-3000:]
    for fragment in fragments:
        assert fragment in error[0], error[0]
    assert "buildx bake" not in result.out + result.err, "a stage ran"
    tag = subprocess.run(["docker", "image", "inspect", f"{IMAGE}:gfx950-thor2-sid"], capture_output=True)
    assert tag.returncode != 0, "an image was built"
    vendor = VendorUserspace.model_validate(yaml.safe_load(matrix.read_text())["nics"]["thor2"]["vendor"])
    folder = ROOT / vendor_dir("thor2", vendor.digest())
    assert not folder.exists(), f"{folder} was cached"
    leftovers = [p for p in folder.parent.glob(f".{folder.name}.*")]
    assert not leftovers, f"temporary leftovers: {leftovers}"


def test_wrong_key_fingerprint(variant: Callable[..., Path]) -> None:
    wrong = "0123456789ABCDEF0123456789ABCDEF01234567"
    matrix = variant(lambda v: v["key"].update(fingerprint=wrong))
    fails_before_any_stage(matrix, "nics.thor2.vendor.key.fingerprint", f"not {wrong}")


def test_tampered_release(variant: Callable[..., Path], tmp_path: Path) -> None:
    copy = tmp_path / "tampered-repo"
    shutil.copytree(REPO_DIR, copy)
    signed = copy / "broadcom" / "ethernet-nic-debian-public" / "dists" / "jammy" / "InRelease"
    signed.write_text(signed.read_text().replace("Label: stand-in vendor repository", "Label: a changed repository"))
    with serve(copy, port=0) as url:
        matrix = variant(lambda v: (v["repo"].update(url=f"{url}/broadcom/ethernet-nic-debian-public"),
                                    v["key"].update(url=f"{url}/key.asc")))
        fails_before_any_stage(matrix, "nics.thor2.vendor", "does not carry a good signature", "BAD signature")


def test_pinned_version_missing(variant: Callable[..., Path]) -> None:
    matrix = variant(lambda v: v["packages"].update({"bnxt-rocelib": "235.2.99.0"}))
    fails_before_any_stage(matrix, "nics.thor2.vendor.packages.bnxt-rocelib", "lists bnxt-rocelib at 235.2.86.0",
                           "no bnxt-rocelib 235.2.99.0")
