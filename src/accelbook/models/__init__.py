"""The models: pure NumPy, one module per chapter topic; formulas and simulators, no JAX, no Matplotlib.

A chapter imports the package and calls a model by its topic,
``models.roofline.ridge_point(...)``. A model module imports neither JAX nor Matplotlib nor
:mod:`accelbook.measure` or :mod:`accelbook.plots` (``tests/test_layers.py`` checks it).
"""

from accelbook.models import choose, collectives, decoder, gpu, kvcache, matmul, overhead, roofline, serving, systolic

__all__ = ["choose", "collectives", "decoder", "gpu", "kvcache", "matmul", "overhead", "roofline", "serving", "systolic"]
