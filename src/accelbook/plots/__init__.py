"""The figures: the house style and shared helpers (:mod:`~accelbook.plots.style`), then one module
per chapter topic. Matplotlib only: a plots module imports no JAX and no :mod:`accelbook.measure`
(``tests/test_layers.py`` checks it); it draws what the models compute and what was measured.

A chapter imports the package and reaches a figure by its topic:
``plots.style.use_style()``, ``plots.roofline.chip_map(ax, rows)``.
"""

from accelbook.plots import choose, collectives, gpu, intro, kvcache, matmul, memory, overhead, roofline, serving, style, systolic

__all__ = ["choose", "collectives", "gpu", "intro", "kvcache", "matmul", "memory", "overhead", "roofline", "serving", "style", "systolic"]
