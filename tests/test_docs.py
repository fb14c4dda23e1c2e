"""Documentation stays in step with the code."""

from __future__ import annotations

from livemosaic.settings import Settings
from tests.conftest import REPO_ROOT


def test_every_setting_is_documented() -> None:
    text = (REPO_ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"`LIVEMOSAIC_{name.upper()}`" not in text]
    assert not missing, f"document these settings in docs/configuration.md: {missing}"


def test_readme_opens_with_the_two_commands() -> None:
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    fences = [i for i, line in enumerate(lines) if line.startswith("```")]
    block = lines[fences[0] + 1 : fences[1]]
    commands = [line for line in block if line.strip() and not line.startswith("#")]
    assert commands == ["scripts/serve", "scripts/test"]
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci
