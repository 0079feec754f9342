"""`tocsin board`: not built yet."""

from tocsin.cli._common import not_yet

command = not_yet("board", "board", "The campaign status board, the portal and the HTTP API.")
