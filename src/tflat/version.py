"""tflat's version, at the ground floor: any room may read it without importing the public API
(``tflat/__init__.py``, which sits above every room)."""

__version__ = "0.1.0"
