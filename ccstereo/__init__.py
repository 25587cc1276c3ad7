"""CCStereo: visually guided mono-to-binaural audio generation (model, training, inference, metrics)."""

__version__ = "0.1.0"
