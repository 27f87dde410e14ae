"""The footer: the keys that work from where the focus is, the most used first.

Textual's footer lists every active binding; at 80 columns the last ones are cut off, and in
the compute pane's editor it would offer ``q``, ``+`` or ``?``, which type into the editor.
This one leaves out what cannot run from the focused widget (``widgets.keys.typed_not_run``) and
shows the editor-only keys (changing panels with ctrl+pageup/pagedown) only there.
"""

from __future__ import annotations

from collections import defaultdict

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from naist_dask_tui.widgets.keys import shown_in_footer


class ConsoleFooter(Footer):
    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        screen = self.screen
        active = screen.active_bindings
        by_action: dict[str, list] = defaultdict(list)
        for _, binding, enabled, tooltip in active.values():
            if shown_in_footer(screen, binding):
                by_action[binding.action].append((binding, enabled, tooltip))
        self.styles.grid_size_columns = len(by_action)
        for bindings in by_action.values():
            binding, enabled, tooltip = bindings[0]
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            try:
                _node, binding, enabled, tooltip = active[self.app.COMMAND_PALETTE_BINDING]
            except KeyError:
                return
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )
