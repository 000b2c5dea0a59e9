"""HLS C++ backend: the integer IR as C++ over the hand-written layer library ``templates/hls``.

Every layer becomes one config struct (sizes, ``<cstdint>`` types of its formats, shift, clamp
bounds, PE/SIMD) and one function calling a template of ``fpgagen_nn.h``; the top functions
chain them in a ``#pragma HLS DATAFLOW`` region. Files in ``OUT/hls/`` (``<top>`` is
``fpgagen_<model>``):

- ``fpgagen_nn.h`` (the layer library; rounding and saturation are written once, in its
  ``requantize``) and ``fpgagen_stream.h`` (``hls::stream``: Vitis's own, or a std::queue
  stand-in under plain g++), verbatim;
- ``<top>.h``: sizes and types of the input and output, the two top functions: ``<top>(x, y)``
  on arrays and ``<top>_stream(x, y)`` on ``hls::stream``s (AXI-Stream in synthesis);
- ``<top>_weights.h``: every weight, bias and reciprocal as a named ``static const`` array;
- ``<top>.cpp``: the layers and the top functions; ``<top>_tb.cpp``: the C-simulation
  testbench; ``csim_input.txt``/``csim_expected.txt``: real samples and the golden model's
  outputs for it; ``run_hls.tcl`` (Vitis HLS: csim, csynth, export); a ``Makefile``
  (``make csim`` builds the C simulation with g++ and runs it).

Ops: conv, dense, max/average/global pools, add, a standalone LeakyRelu, channel concat (one
``concat_input`` call per input, each with its own shift and input type, written at its channel
offset; a vector input that is a flattened map is read through an index table), nearest resize
and zero pad. A fused LeakyRelu is three more members of the layer's config struct (``LEAKY``,
``ALPHA``, ``ALPHA_FRAC``), which the library's requantizer reads.

Layout: feature maps live in HWC order (channel fastest, then column, then row), as the
Verilog backend streams them; vectors in index order. A Flatten is free (its output shares its
input's buffer): the Dense after it takes its weight columns in HWC order, and an Add whose
inputs are stored in different orders (a flattened map and a vector) reads its second input
through an index table, as a Concat of vectors reads a flattened map. The testbench reads and
writes CHW (ONNX) order and converts.

Names: every identifier comes from :mod:`fpgagen.names`, one :class:`~fpgagen.names.Namespace`
per C++ scope (the files' globals, the ``<top>_impl`` namespace, the top functions' locals), and
a layer's identifier is reserved together with everything derived from it (``<id>_cfg``,
``layer_<id>``, ``<ID>_W``, ...); ONNX names appear only in comments, as :func:`~fpgagen.names.quoted`.

:func:`verify` compiles the C simulation with g++ (cached by the sources' content hash), runs it
on the input integers and compares every output integer with the golden model; on a mismatch
it re-runs the first failing sample with every layer's output traced and names the first layer
that differs.

The backend is three modules: :mod:`~fpgagen.backends.hls.plan` (names, types, the emitter
contract, the model plan), :mod:`~fpgagen.backends.hls.emit` (one emitter per op, the generated
files) and :mod:`~fpgagen.backends.hls.run` (the C simulation and the bit-exact check); this
package exports their names.
"""

from fpgagen.backends.hls.plan import *  # noqa: F401,F403
from fpgagen.backends.hls.emit import *  # noqa: F401,F403
from fpgagen.backends.hls.run import *  # noqa: F401,F403
