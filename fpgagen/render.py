"""The one Jinja2 environment every generator renders with (StrictUndefined: no silent blanks)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2


def templates_dir() -> Path:
    """The shipped ``templates/`` folder (package ``fpgagen.templates``)."""
    import fpgagen.templates

    return Path(fpgagen.templates.__file__).parent


@lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


def read_library_file(relpath: str) -> str:
    """A hand-written library file shipped under ``templates/``, verbatim."""
    return (templates_dir() / relpath).read_text()
