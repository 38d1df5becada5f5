"""Root conftest: shared fixtures live in tests/fixtures/<concern>.py, one file per owner."""

from pathlib import Path

pytest_plugins = [
    f"tests.fixtures.{p.stem}"
    for p in sorted((Path(__file__).parent / "tests" / "fixtures").glob("*.py"))
    if p.stem != "__init__"
]
