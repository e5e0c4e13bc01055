from tests.lines.conftest import scene

__all__ = ["scene"]
