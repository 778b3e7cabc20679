"""Production entry points start light and never reach into oracle.dev: the CLI, the query API and
the daemon's composition root import neither torch (it loads with the first predictor) nor the
dev stack. Each check runs in a fresh interpreter, so nothing imported by other tests hides it."""

import subprocess
import sys

import pytest

ENTRY_POINTS = ["oracle.cli", "oracle.api.app", "oracle.daemon.app", "oracle.daemon.listener"]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_an_entry_point_imports_neither_torch_nor_the_dev_stack(module: str) -> None:
    probe = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.split('.')[:2] == ['oracle', 'dev']))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_help_lists_the_dev_verbs_without_loading_them() -> None:
    probe = (
        "import sys; from click.testing import CliRunner; from oracle.cli import main; "
        "out = CliRunner().invoke(main, ['--help']).output; "
        "print('dev' in out.split(), any(m.startswith('oracle.dev') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert result.split() == ["True", "False"]


def test_a_dev_verb_loads_its_commands_when_invoked() -> None:
    from click.testing import CliRunner

    from oracle.cli import main

    result = CliRunner().invoke(main, ["dev", "--help"])
    assert result.exit_code == 0, result.output
    assert {"up", "demo", "status", "down"} <= set(result.output.split())
