"""`python -m cli` is `allegro-backup`."""

from cli.main import app

app(prog_name="allegro-backup")
