"""Generate the Python stubs for the API: `python proto/generate.py [OUT_DIR]` (default: client/).

`make proto` runs this into client/ (where the committed stubs live); the test suite runs it into a temp
dir and fails when the committed stubs differ. `-Iproto` makes the generated imports read
`from rewrite_detector.v1 import detector_pb2`, so no post-processing is needed.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PROTO_FILES = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in PROTO_ROOT.rglob("*.proto"))


def _plugin(name: str) -> str:
    """mypy-protobuf's protoc plugins, found beside this interpreter: a venv's bin/ need not be on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: install the dev extra (mypy-protobuf)")
    return f"--plugin={name}={found}"


def generate(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    include_well_known = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "grpc_tools.protoc",
        _plugin("protoc-gen-mypy"),
        _plugin("protoc-gen-mypy_grpc"),
        f"-I{PROTO_ROOT}",
        f"-I{include_well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *PROTO_FILES,
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_ROOT.parent / "client")
