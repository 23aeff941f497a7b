"""The math of nnscratch: layers, networks, losses, optimizers, the training loop.

Importing the package registers every layer type (see ``layers.register``),
so a model file can name any of them.
"""
from . import batchnorm, conv, layers  # noqa: F401 - registers the layer types
