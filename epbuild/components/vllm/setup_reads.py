"""Which requirement files vLLM's setup.py reads for ROCm, found by reading that setup.py at the pin.

setup.py ends in `setup(..., install_requires=get_requirements())`, and for HIP `get_requirements()` reads
`requirements/rocm.txt` through `_read_requirements`, which follows `-r` lines (`-r common.txt`). Every setup.py
command reads them, the native build included (setup.py as stored at 002a0ba9 read `requirements-rocm.txt` at the
root; the current layout keeps them under `requirements_dir = ROOT_DIR / "requirements"`). So the native step needs
these files, and the final image needs what they list (docker/Dockerfile.rocm@00305ee5 installs
requirements/rocm.txt in build_vllm_dependencies, which csrc-build is FROM, and again in final).
"""

from __future__ import annotations

import ast
from pathlib import Path

from epbuild.inputs.wheelhouse import WheelhouseError, requirement_files


class SetupReadError(WheelhouseError):
    pass


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
        {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def _directory(function: ast.FunctionDef) -> str:
    """The folder get_requirements reads from: `requirements_dir = ROOT_DIR / "requirements"`, else the root."""
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.BinOp) and isinstance(node.value.op, ast.Div) \
                and isinstance(node.value.right, ast.Constant) and isinstance(node.value.right.value, str):
            return node.value.right.value
    return ""


def _rocm_file(function: ast.FunctionDef) -> str | None:
    """The file read in the branch taken for HIP (`elif _is_hip(): requirements = _read_requirements("rocm.txt")`)."""
    for node in ast.walk(function):
        if not (isinstance(node, ast.If) and "_is_hip" in _names(node.test)):
            continue
        for statement in node.body:
            for call in (n for n in ast.walk(statement) if isinstance(n, ast.Call)):
                if "_read_requirements" in _names(call.func) and call.args and isinstance(call.args[0], ast.Constant):
                    return str(call.args[0].value)
    return None


def rocm_requirement_file(source: Path) -> str:
    """The requirement file (relative to the source) setup.py passes to install_requires for ROCm."""
    setup_py = source / "setup.py"
    where = f"vllm: {setup_py.name}"
    if not setup_py.is_file():
        raise SetupReadError(f"{where}: does not exist at the pin")
    tree = ast.parse(setup_py.read_text(), filename=str(setup_py))
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "get_requirements"]
    if not functions:
        raise SetupReadError(f"{where}: has no get_requirements(), so the ROCm requirements it installs cannot be "
                             "found (epbuild/components/vllm/setup_reads.py reads them from there)")
    name = _rocm_file(functions[0])
    if name is None:
        raise SetupReadError(f"{where}: get_requirements() has no `_is_hip()` branch reading a requirements file")
    folder = _directory(functions[0])
    return f"{folder}/{name}" if folder else name


def rocm_requirements(source: Path) -> tuple[str, ...]:
    """The ROCm requirement file setup.py reads and every file it includes with `-r`, as setup.py follows them."""
    first = rocm_requirement_file(source)
    return tuple(requirement_files(source, (first,), "vllm at the pin (setup.py's get_requirements)"))
