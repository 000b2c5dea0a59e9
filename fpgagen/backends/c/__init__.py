"""Microcontroller C backend: ``model.h`` over a small hand-written C99 runtime.

Files (``OUT/c/``):

- ``model.h``: the weights as ``static const int8_t`` arrays (shape, format and ONNX node in a
  comment), biases (``int32_t`` or ``int64_t`` per the layer's accumulator width), reciprocals,
  one constant descriptor per layer, ONE static arena and ``<name>_run()``, which calls the
  runtime layer by layer on buffers at offsets fixed here.
- ``fpgagen_nn.h`` / ``fpgagen_nn.c``: the runtime (``templates/c``), copied verbatim.
- ``main.c``: an example that runs one embedded sample and checks it against the golden model.
- ``harness.c``: the test harness ``verify`` builds (reads ``input.bin``, writes
  ``output.bin``), for the host and, under ``qemu-system-arm``, the Cortex-M4 board of
  ``arm/`` (semihosting); ``Makefile`` builds all of them.

Layout: every tensor element is a byte (the backend takes formats of up to 8 bits); feature
maps are HWC. A Flatten is a view (no code, no memory): the dense layer after it takes its
weight columns in HWC order.

Memory: one arena. Layers run one after another; a tensor occupies memory from the layer that
writes it (the input: from the start) to the last layer that reads it (the output: to the end).
A Flatten shares its input's bytes; a pool, global average pool or add may write its output
over an input that no later layer reads, where the kernel's access order allows it (an output
pixel's window never reads an earlier pixel; element-wise for add). The arena's lower bound is
the largest, over layers, of the bytes live while the layer runs; :func:`plan_memory` places
every buffer so that this bound is met (a small exhaustive search) and says so in ``model.h``.

The backend is three modules: :mod:`~fpgagen.backends.c.plan` (storage, layouts, the memory
plan), :mod:`~fpgagen.backends.c.emit` (constants, one emitter per op, the generated files) and
:mod:`~fpgagen.backends.c.run` (compilers, qemu, the bit-exact check); this package exports their
names.
"""

from fpgagen.backends.c.plan import *  # noqa: F401,F403
from fpgagen.backends.c.emit import *  # noqa: F401,F403
from fpgagen.backends.c.run import *  # noqa: F401,F403
