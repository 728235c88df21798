"""``python -m bot`` is the ``aftersales`` command."""

from bot.cli import app

app(prog_name="aftersales")
