"""fgi-rewrite: turn surrogate-gradient autograd Functions into forward gradient injection.

The rewriter (`rewrite_source`, the `fgi-rewrite` CLI) needs no torch. The runtime helpers in
`fgi_rewrite.runtime` and the benchmark in `fgi_rewrite.bench` do.
"""

__version__ = "0.1.0"

from .api import rewrite_source  # noqa: E402

__all__ = ["rewrite_source", "__version__"]
