"""segql: real-time customer segmentation inside PostgreSQL."""

__version__ = "0.1.0"
