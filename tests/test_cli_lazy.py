"""The CLI loads lazily: `--help` imports no command module and no config tree; each command still works."""

from __future__ import annotations

import inspect
import subprocess
import sys

import typer


def test_every_summary_is_its_commands_docstring():
    """COMMANDS (what --help lists without importing) says exactly what each command's docstring says."""
    from geolocate.cli import COMMANDS, app

    group = typer.main.get_command(app)
    for name, (module, summary) in COMMANDS.items():
        real = group.load_command(name)
        assert real.callback.__module__ == f"geolocate.cli.{module}"
        assert inspect.cleandoc(real.help).split("\n\n")[0] == summary, name
    registered = {info.name for info in app.registered_commands}
    assert registered == set(COMMANDS)  # every @command is listed, none twice


def test_help_imports_no_command_module_and_no_config():
    code = ("import sys\nfrom geolocate.cli import main\nsys.argv = ['geolocate', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('LOADED=' + ','.join(sorted(m for m in sys.modules if m.startswith(('geolocate.', 'pydantic', 'numpy', 'polars', 'torch')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = out.rsplit("LOADED=", 1)[1].strip().split(",")
    assert sorted(loaded) == ["geolocate.cli", "geolocate.cli.app", "geolocate.errors"]


def test_a_command_loads_only_its_own_module():
    code = ("import sys\nfrom geolocate.cli import main\nsys.argv = ['geolocate', 'models', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('LOADED=' + ','.join(sorted(m for m in sys.modules if m.startswith('geolocate.cli.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.rsplit("LOADED=", 1)[1].strip() == "geolocate.cli.app,geolocate.cli.models"


def test_packaged_defaults_path_agrees_with_config():
    from geolocate.cli.app import PACKAGED_TOML
    from geolocate.config import packaged_config_path

    assert PACKAGED_TOML == packaged_config_path().resolve()


def test_a_typo_still_gets_a_suggestion(cli):
    result = cli("predcit")
    assert result.exit_code == 2 and "predict" in result.output
