"""Build-system requirements are read from the source at the pin (pyproject.toml's `[build-system] requires`,
setup.py's `setup_requires`, also when setup.py builds the list before the call, as AITER's does), and vLLM's
setup.py is read for the requirement files it installs with its wheel."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from epbuild.components.vllm import setup_reads
from epbuild.inputs import build_requires
from epbuild.inputs.wheelhouse import Requirement, WheelhouseError
from epbuild.model.component import BUILTIN_DIR
from epbuild.offline.python_stand_ins import SOURCES_DIR, wheel_bytes


def test_aiter_s_setup_requires_list_and_its_appends_are_read(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text(
        'from setuptools import setup\nsetup_requires = ["packaging", "setuptools_scm"]\nif X:\n'
        '    setup_requires.append("pandas")\nsetup(name="amd-aiter", setup_requires=setup_requires)\n')
    (tmp_path / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=45", "setuptools_scm[toml]>=6.2"]\n')
    assert build_requires.read(tmp_path) == [
        Requirement("setuptools>=45", build_requires.PYPROJECT_ORIGIN),
        Requirement("setuptools_scm[toml]>=6.2", build_requires.PYPROJECT_ORIGIN),
        Requirement("packaging", build_requires.SETUP_ORIGIN), Requirement("setuptools_scm", build_requires.SETUP_ORIGIN),
        Requirement("pandas", build_requires.SETUP_ORIGIN)]


def test_the_aiter_stand_in_lists_setuptools_scm_only_where_the_real_one_does() -> None:
    """AITER@6a0e7b26: setuptools_scm in setup_requires and [build-system] requires, not in requirements.txt."""
    fixture = BUILTIN_DIR / "aiter" / "fixture"
    names = {r.name for r in build_requires.read(fixture)}
    assert "setuptools-scm" in names
    assert "setuptools" not in (fixture / "requirements.txt").read_text().replace("#", "\n#").split("\n#")[0]
    assert not [line for line in (fixture / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#") and "setuptools" in line]


def test_a_computed_setup_requires_is_refused(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup(name='x', setup_requires=make())\n")
    with pytest.raises(build_requires.UnreadableBuildRequires, match="line 2: setup_requires is computed"):
        build_requires.read(tmp_path)


def test_vllm_s_rocm_requirements_are_found_by_reading_its_setup_py() -> None:
    fixture = BUILTIN_DIR / "vllm" / "fixture"
    assert setup_reads.rocm_requirements(fixture) == ("requirements/rocm.txt", "requirements/common.txt")


def test_an_older_layout_with_files_at_the_root_is_read_too(tmp_path: Path) -> None:
    # setup.py as stored at 002a0ba9: `_read_requirements("requirements-rocm.txt")`, no requirements/ folder.
    (tmp_path / "setup.py").write_text(
        "def get_requirements():\n    def _read_requirements(filename):\n        return []\n"
        "    if _is_cuda():\n        requirements = _read_requirements('requirements-cuda.txt')\n"
        "    elif _is_hip():\n        requirements = _read_requirements('requirements-rocm.txt')\n"
        "    return requirements\n")
    (tmp_path / "requirements-rocm.txt").write_text("-r requirements-common.txt\nfoo\n")
    (tmp_path / "requirements-common.txt").write_text("bar\n")
    assert setup_reads.rocm_requirements(tmp_path) == ("requirements-rocm.txt", "requirements-common.txt")


def test_a_setup_py_without_a_rocm_branch_is_named(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text("def get_requirements():\n    return []\n")
    with pytest.raises(WheelhouseError, match=r"get_requirements\(\) has no `_is_hip\(\)` branch"):
        setup_reads.rocm_requirements(tmp_path)


def test_what_setup_py_s_own_get_requirements_opens_is_what_epbuild_found() -> None:
    """Run the stand-in's own get_requirements (taken out of its setup.py, on the HIP path) and record the files it
    opens: they are the files epbuild hands the native step."""
    fixture = BUILTIN_DIR / "vllm" / "fixture"
    tree = ast.parse((fixture / "setup.py").read_text())
    [function] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_requirements"]
    opened: list[str] = []

    def spy(path: object, *args: object, **kwargs: object) -> object:
        opened.append(str(path))
        return open(path, *args, **kwargs)  # type: ignore[call-overload]

    namespace: dict[str, object] = {"ROOT_DIR": fixture, "_is_hip": lambda: True, "open": spy}
    exec(compile(ast.Module(body=[function], type_ignores=[]), "setup.py", "exec"), namespace)
    listed = namespace["get_requirements"]()  # type: ignore[operator]
    assert listed, "the stand-in's get_requirements read nothing"
    assert sorted(str(Path(p).relative_to(fixture)) for p in opened) == sorted(setup_reads.rocm_requirements(fixture))


def test_stand_in_wheels_repeat_byte_for_byte() -> None:
    folders = sorted(p for p in SOURCES_DIR.iterdir() if (p / "pyproject.toml").is_file())
    assert folders, f"no stand-in distribution under {SOURCES_DIR}"
    for folder in folders:
        assert wheel_bytes(folder) == wheel_bytes(folder)
