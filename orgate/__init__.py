"""orgate: a self-hosted AI gateway for Claude and OpenAI-compatible APIs."""

__version__ = "0.1.0"
