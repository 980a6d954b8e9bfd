"""torch and torchvision must be a matching pair; a mismatch is one line saying how to fix it.

A torchvision built for another torch imports its C++ operators into a torch that has no slot for
them: `import torch` works, `import torchvision` (or its first op) fails with a long traceback
ending in `operator torchvision::nms does not exist`. `check_torchvision` runs one op, the cheap
way to know; the bootstrap (`python -m geolocate.models.compat`) and `geolocate train` ask it.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata

from geolocate.errors import UserError

_INDEX = "https://download.pytorch.org/whl"


def check_torchvision(pip: str = "pip") -> None:
    """Run `torchvision.ops.nms` on two boxes.

    Args:
        pip: how the fix line spells pip (the bootstrap passes its venv's).

    Raises:
        UserError: torchvision missing, or not working with this torch, with the install line to fix it.
    """
    import torch

    try:
        from torchvision.ops import nms

        nms(torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]), torch.tensor([0.9, 0.8]), 0.5)
    except Exception as exc:  # ImportError, RuntimeError (the operator), OSError (a missing library)
        raise UserError(mismatch_message(torch.__version__, _installed("torchvision"), exc, pip)) from None


def mismatch_message(torch_version: str, torchvision_version: str | None, exc: BaseException, pip: str = "pip") -> str:
    """One line: what failed and the `pip install` of a matching pair (from PyTorch's index for a +cpu/+cuXXX torch)."""
    cause = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:100]
    base, _, build = torch_version.partition("+")
    match = matching_torchvision(torch_version)
    # a +cpu or +cu130 torch came from PyTorch's index for that build: its torchvision is there too
    index = f" --index-url {_INDEX}/{build}" if re.fullmatch(r"cpu|cu\d+|rocm[\d.]+", build) else ""
    fix = (f"{pip} install torch=={base} torchvision=={match}{index}" if match
           else f"{pip} install --force-reinstall torch torchvision{index}")
    if torchvision_version is None:
        return f"torchvision is not installed beside torch {torch_version} ({cause}); install the matching one: {fix}"
    return (f"torch {torch_version} and torchvision {torchvision_version} do not work together ({cause}); "
            f"reinstall a matching pair: {fix}")


def matching_torchvision(torch_version: str) -> str | None:
    """'2.14.1' (or '2.14.1+cpu') → '0.29.1': torchvision 0.(N+15).P is released with torch 2.N.P."""
    found = re.match(r"^2\.(\d+)\.(\d+)", torch_version)
    return f"0.{int(found.group(1)) + 15}.{found.group(2)}" if found else None


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":  # the bootstrap's install check: silent when the pair works
    try:
        check_torchvision(sys.argv[1] if len(sys.argv) > 1 else "pip")
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
