"""One key map: every binding has an id, the ids are unique, the compute pane's keys are ones
an editor does not use, and the config file's [keys] table rebinds them (or is refused in one
line naming keys.<id>)."""

from __future__ import annotations

import pytest
from textual.widgets import TextArea

from naist_dask_tui import cli, keymap
from naist_dask_tui.core.settings import SettingsError, load_settings


def test_every_binding_has_a_unique_id_and_no_alt_keys():
    seen: dict[str, str] = {}
    for title, bindings in keymap.sections():
        for b in bindings:
            assert b.id, f"{title}: {b.key} has no id"
            assert b.id not in seen or seen[b.id] == title, b.id
            seen[b.id] = title
            assert "alt+" not in b.key, f"{b.id}: alt keys can reach the app as escape + a letter in tmux"


def test_compute_keys_are_not_the_editors():
    from naist_dask_tui.widgets.command_pane import ComputePane

    editor_keys = {k for b in TextArea.BINDINGS for k in b.key.split(",")}
    for b in ComputePane.BINDINGS:
        if b.priority:
            continue  # escape/ctrl+c: cancel, only while a computation runs
        for key in b.key.split(","):
            assert key not in editor_keys, f"{b.id}: {key} is the editor's"
            assert not keymap.is_printable(key), f"{b.id}: {key} would type into the editor"


def test_keys_table_is_read_and_checked(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[keys]\n"compute.run" = "f9, ctrl+r"\n"main.scale_to" = "S"\n')
    s = load_settings({}, config_path=path, env={})
    assert dict(s.keys) == {"compute.run": "f9, ctrl+r", "main.scale_to": "S"}
    assert keymap.validate(s.keys) == {"compute.run": "f9,ctrl+r", "main.scale_to": "S"}
    with pytest.raises(SettingsError) as err:
        keymap.validate({"compute.rnu": "f9"}, f"{path} [keys]")
    assert str(err.value).startswith("keys.compute.rnu: 'compute.rnu' is not a binding id; did you mean")
    with pytest.raises(SettingsError, match=r"^keys.compute.run: 'ctrl r' is not a key name"):
        keymap.validate({"compute.run": "ctrl r"})
    path.write_text('keys = "f9"\n')
    with pytest.raises(SettingsError, match="^keys: must be a table"):
        load_settings({}, config_path=path, env={})


def test_a_bad_keys_entry_stops_the_console_before_anything_starts(tmp_path, capsys, monkeypatch):
    path = tmp_path / "config.toml"
    path.write_text('[keys]\n"main.qiut" = "x"\n')
    started = []
    monkeypatch.setattr(cli, "confirm_start", lambda *a, **k: started.append(1))
    assert cli.main(["--backend", "local", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("naist-dask-tui: error: keys.main.qiut:")
    assert not started


async def test_rebound_keys_work_and_show_in_help_and_hint(local_controller):
    from dataclasses import replace

    from naist_dask_tui.app import make_app

    settings = replace(local_controller.settings, keys={"compute.run": "f9", "main.help": "h"})
    app = make_app(settings, local_controller)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("6")
        await pilot.pause(0.2)
        pane = app.main.query_one("ComputePane")
        assert "f9[/b] run" in pane._hint()
        pane.editor.load_text("6 * 7")
        await pilot.press("f9")
        for _ in range(100):
            if "Out [1]" in "\n".join("".join(s.text for s in strip) for strip in pane.log_widget.lines):
                break
            await pilot.pause(0.1)
        else:
            raise AssertionError("f9 did not run the code")
        pane.log_widget.focus()
        await pilot.press("h")
        import re

        text = str(app.screen.query_one("#help-text").render())
        assert re.search(r"^\s+f9\s+Run$", text, re.M), text
        assert re.search(r"^\s+h\s+Help: every key$", text, re.M), text
