"""fgi-rewrite: turn surrogate-gradient autograd Functions into forward gradient injection.

The rewriter (`rewrite_source`, the `fgi-rewrite` CLI) needs no torch. The runtime helpers in
`fgi_rewrite.runtime` and the benchmark in `fgi_rewrite.bench` do.
"""

__version__ = "0.1.0"

__all__ = ["rewrite_source", "__version__"]


def __getattr__(name: str):
    # Lazy: a pre-commit run that finds nothing to do should not pay for importing libcst/black.
    if name == "rewrite_source":
        from .api import rewrite_source

        return rewrite_source
    raise AttributeError(f"module 'fgi_rewrite' has no attribute {name!r}")
