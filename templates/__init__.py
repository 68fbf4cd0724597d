"""Code templates emitted by fgi-rewrite (installed as the package `fgi_rewrite.templates`)."""
