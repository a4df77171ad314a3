"""MkDocs hook: the docstrings' Sphinx roles (:class:`~nndl.net.History`) shown as plain code.

The docstrings are written for readers of the source and use Sphinx's cross-reference
roles; mkdocstrings renders the backquoted name as code and leaves the role in front of
it.  This drops the role, and the "~" that asks for the last dotted name only.
"""
import re

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|exc|data|obj):<code>(~?)([\w.]+)</code>")


def _name(match):
    tilde, name = match.groups()
    return f"<code>{name.rsplit('.', 1)[-1] if tilde else name}</code>"


def on_page_content(html, **kwargs):
    return _ROLE.sub(_name, html)
