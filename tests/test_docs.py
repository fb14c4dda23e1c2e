"""Documentation stays in step with the code."""

from __future__ import annotations

from livemosaic.core.watch_rules import RULE_KEYS
from livemosaic.settings import Settings
from tests.conftest import REPO_ROOT


def test_every_setting_is_documented() -> None:
    text = (REPO_ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"`LIVEMOSAIC_{name.upper()}`" not in text]
    assert not missing, f"document these settings in docs/configuration.md: {missing}"


def test_every_watch_rule_key_is_documented() -> None:
    text = (REPO_ROOT / "docs" / "watching.md").read_text()
    missing = sorted(k for k in RULE_KEYS - {"marker_mode"} if f"| `{k}" not in text)
    assert not missing, f"document these watch rule keys in docs/watching.md: {missing}"


def test_readme_opens_with_the_two_commands() -> None:
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    fences = [i for i, line in enumerate(lines) if line.startswith("```")]
    block = lines[fences[0] + 1 : fences[1]]
    commands = [line for line in block if line.strip() and not line.startswith("#")]
    assert commands == ["scripts/serve", "scripts/test"]
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci
