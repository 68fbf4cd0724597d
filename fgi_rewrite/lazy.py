"""A click command whose implementation is imported only when it runs (it may need torch)."""

from __future__ import annotations

import importlib

import click


class LazyCommand(click.Command):
    def __init__(self, name: str, target: str, help_text: str):
        super().__init__(name, help=help_text, add_help_option=False)
        self._target = target
        self._loaded = None

    def _load(self) -> click.Command:
        if self._loaded is None:
            module_name, _, attribute = self._target.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as error:
                raise click.ClickException(
                    f"`fgi {self.name}` needs the optional dependencies: "
                    f"pip install 'fgi-rewrite[torch]' ({error})"
                ) from error
            self._loaded = getattr(module, attribute)
        return self._loaded

    def make_context(self, info_name, args, parent=None, **extra):
        return self._load().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx):
        return self._load().invoke(ctx)

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.help or ""
