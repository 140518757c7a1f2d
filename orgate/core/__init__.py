"""Value types every layer shares: usage, a deployment target, SSE framing (the error tree is orgate/errors.py).

This package sits below routing, upstreams, dialects and governance and imports none of them, so those
layers can name the same facts without importing each other (tests/unit/test_layering.py keeps it so).
"""
