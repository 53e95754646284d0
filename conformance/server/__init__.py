"""The embedded reference server: the suite's executable statement of OpenAI behaviour."""

from .http import DEFAULT_MODELS, ReferenceServer

__all__ = ["ReferenceServer", "DEFAULT_MODELS"]
