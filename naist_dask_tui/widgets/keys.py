"""What the widgets need of the key map: the keys a binding has now (the user's ``[keys]``
table may rebind them) and which bindings the footer offers from where the focus is.

The key map itself (every binding of every screen, the ``[keys]`` table checked, the help
screen's sections) is :mod:`naist_dask_tui.keymap`, above the screens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from textual.binding import Binding

# printable keys (what an editor or an input types instead of running the binding)
_PRINTABLE_NAMES = {
    "plus", "minus", "equals_sign", "slash", "question_mark", "space", "full_stop", "comma",
}


def keymap_of(app: Any) -> Mapping[str, str]:
    """The user's rebound keys in force on ``app``: binding id -> keys."""
    return getattr(app, "_keymap", None) or {}


def keys_for(app: Any, binding_id: str, bindings: Iterable[Any]) -> str:
    """The keys bound to ``binding_id`` (one of ``bindings``) now, as the user types them
    ("ctrl+r")."""
    rebound = keymap_of(app).get(binding_id)
    if rebound:
        return rebound.split(",")[0]
    binding = next((b for b in bindings if isinstance(b, Binding) and b.id == binding_id), None)
    if binding is None:
        return binding_id
    if binding.key_display:
        return binding.key_display
    return binding.key.split(",")[0]


def is_printable(key: str) -> bool:
    key = key.strip()
    return len(key) == 1 or key in _PRINTABLE_NAMES


def typed_not_run(screen: Any, binding: Binding) -> bool:
    """True when the focused widget takes ``binding``'s keys as text (an editor or an
    input): the binding cannot run from there, so the footer does not offer it."""
    if not _typing(screen):
        return False
    keys = keymap_of(screen.app).get(binding.id or "", binding.key)
    return all(is_printable(k) for k in keys.split(","))


# bindings the footer shows only while an editor or input has the focus (keys that work
# from there and are not needed elsewhere)
TYPING_ONLY = {"main.help_f1", "main.next_panel"}


def shown_in_footer(screen: Any, binding: Binding) -> bool:
    if not binding.show:
        return False
    typing = _typing(screen)
    if binding.id in TYPING_ONLY:
        return typing
    return not (typing and typed_not_run(screen, binding))


def _typing(screen: Any) -> bool:
    from textual.widgets import Input, TextArea

    return isinstance(screen.focused, (TextArea, Input))
