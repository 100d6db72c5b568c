"""Loss landscapes and flatness of self-supervised Vision Transformers (MAE, RC-MAE) versus supervised ViTs."""

__version__ = "0.1.0"
