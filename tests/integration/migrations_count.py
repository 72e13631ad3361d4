"""How many migrations services/api/migrations.c embeds, read from the source
so that the tests follow when one is added."""
import pathlib
import re

SOURCE = pathlib.Path(__file__).resolve().parents[2] / "services" / "api" / "migrations.c"
MIGRATIONS = len(re.findall(r"^\s*\{ (\d+), \"", SOURCE.read_text(), re.M))
