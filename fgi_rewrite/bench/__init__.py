"""Benchmark of backward() surrogate gradients vs. forward gradient injection.

The experiment of Otte 2024 (arXiv 2406.00177): an adaptive-LIF recurrent SNN
on sequential MNIST, timed in eager mode, under TorchScript and under
``torch.compile``, with the original ``torch.autograd.Function`` spike and with
the FGI form that :func:`fgi_rewrite.api.rewrite_source` makes of the same file.

* :mod:`.harness` - variants, equivalence check, per-configuration timing
* :mod:`.data` - S-MNIST IDX loader, offline digits, random S-MNIST inputs
* :mod:`.report` - results.json / results.csv / tables.md / figure.png
* :mod:`.commands` - the ``fgi bench`` and ``fgi train`` click commands

Submodules are imported on use (torch is imported only when needed).
"""
