"""The committed protobuf/gRPC stubs must be exactly what `make proto` generates from the .proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "client" / "rewrite_detector" / "v1"


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "proto" / "generate.py"), str(tmp_path)], check=True)
    generated = tmp_path / "rewrite_detector" / "v1"
    names = sorted(p.name for p in generated.iterdir() if p.is_file())
    assert names == ["detector_pb2.py", "detector_pb2.pyi", "detector_pb2_grpc.py", "detector_pb2_grpc.pyi"]
    stale = [n for n in names if (COMMITTED / n).read_text() != (generated / n).read_text()]
    assert not stale, f"stubs out of date, run `make proto`: {stale}"
