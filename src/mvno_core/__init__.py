"""mvno-core: the number-lifecycle core for Chinese MVNOs."""

__version__ = "0.1.0"
