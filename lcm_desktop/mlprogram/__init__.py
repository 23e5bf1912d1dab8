"""A reference executor for the ML Programs inside Core ML ``.mlpackage``s, in numpy, on any OS.

    program = load_program(Path("Unet.mlpackage"))   # coremltools reads the package (imported here only)
    outputs = Executor(program).predict({"sample": ..., "timestep": ..., ...})

Each op is implemented from coremltools' MIL op definitions (``mil/ops/defs``), honouring the
program's dtypes: ops compute in float32 and their fp16 outputs are rounded to fp16 at every op
boundary (see ``program.conform``).  Compressed weights (``constexpr_*``) are expanded exactly,
once.  An op the executor does not know is one ``ModelFormatError`` naming the op and the package.
Numpy only at import; ``lcm_desktop.core`` is the only package of ours it uses.
"""

from __future__ import annotations

from .executor import Executor
from .loader import load_program
from .program import Op, Program

__all__ = ["Executor", "Op", "Program", "load_program"]
