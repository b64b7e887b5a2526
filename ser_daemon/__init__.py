"""ser-daemon: streaming speech emotion recognition for VR avatars."""

__version__ = "0.1.0"

__all__ = ["__version__"]
