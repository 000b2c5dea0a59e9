"""The build report (``OUT/report.html``): :mod:`fpgagen.report.html` renders the page,
:mod:`fpgagen.report.heatmap` draws the MSB heat map.

``fpgagen.report`` at the package top level is the function :func:`fpgagen.api.report`; this
subpackage's modules are reachable through it as ``fpgagen.report.html`` and
``fpgagen.report.heatmap`` (both imported here; matplotlib only when a map is drawn).
"""

from fpgagen.report import heatmap, html  # noqa: F401  (bound onto the function fpgagen.report)
