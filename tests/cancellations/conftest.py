"""Cancellation tests use the line scene (an MVNO with a 165 block in province 11, its partner key and a
verified subscriber)."""

from tests.lines.conftest import other_scene, scene

__all__ = ["other_scene", "scene"]
