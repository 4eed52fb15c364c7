"""--source COMPONENT=PATH: the exported tree is what git would add, uncommitted changes included, and its digest
(which the content key covers) follows the content, not the folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_sources import git, make_repo

from epbuild.inputs.local_source import LocalSourceError, export, parse


def test_uncommitted_and_untracked_files_are_included_ignored_ones_are_not(tmp_path: Path) -> None:
    tree = tmp_path / "DeepEP"
    head = make_repo(tree, {"setup.py": "v1", ".gitignore": "build/\n"})
    (tree / "setup.py").write_text("v1 + my change")
    (tree / "new.cpp").write_text("int x;")
    (tree / "build").mkdir()
    (tree / "build" / "junk.o").write_text("junk")
    out = export("deepep", tree, tmp_path / "root")
    assert out.head == head
    files = sorted(str(p.relative_to(out.export)) for p in out.export.rglob("*") if p.is_file())
    assert files == [".gitignore", "new.cpp", "setup.py"]
    assert (out.export / "setup.py").read_text() == "v1 + my change"


def test_the_digest_follows_the_content_not_the_folder(tmp_path: Path) -> None:
    tree = tmp_path / "a"
    make_repo(tree, {"setup.py": "v1"})
    first = export("deepep", tree, tmp_path / "root").digest
    copy = tmp_path / "b"
    shutil.copytree(tree, copy)
    assert export("deepep", copy, tmp_path / "root").digest == first
    (copy / "setup.py").write_text("v2")
    changed = export("deepep", copy, tmp_path / "root").digest
    assert changed != first
    git(copy, "commit", "-qam", "commit it")  # committing changes nothing in the tree's content
    assert export("deepep", copy, tmp_path / "root").digest == changed


def test_bad_source_arguments_are_errors(tmp_path: Path) -> None:
    with pytest.raises(LocalSourceError, match="COMPONENT=PATH"):
        parse(["deepep"], ["deepep"])
    with pytest.raises(LocalSourceError, match="no component 'DeepEP'"):
        parse([f"DeepEP={tmp_path}"], ["deepep"])
    with pytest.raises(LocalSourceError, match="is not a folder"):
        parse([f"deepep={tmp_path / 'missing'}"], ["deepep"])


def test_a_file_that_vanishes_or_a_folder_that_cannot_be_walked_is_one_clear_error(tmp_path: Path,
                                                                                      monkeypatch: pytest.MonkeyPatch
                                                                                      ) -> None:
    """A working tree changes under a build (an editor's swap file, a tool's temporary folder): what cannot be read
    is named, never a traceback."""
    import epbuild.inputs.local_source as local_source

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "setup.py").write_text("print()\n")
    listed = local_source._files(tree)
    monkeypatch.setattr(local_source, "_files", lambda _: [*listed, Path("gone.swp")])
    with pytest.raises(LocalSourceError, match=r"--source vllm=.*: cannot read gone\.swp: No such file or directory"):
        export("vllm", tree, tmp_path / "root")

    def walk_fails(_: Path) -> list[Path]:
        raise FileNotFoundError(2, "No such file or directory", str(tree / "tmp-1234"))

    monkeypatch.setattr(local_source, "_files", walk_fails)
    with pytest.raises(LocalSourceError, match=r"cannot list .*tmp-1234: No such file or directory"):
        export("vllm", tree, tmp_path / "root")
