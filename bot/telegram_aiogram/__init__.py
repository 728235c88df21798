"""The aiogram 3 adapter: thin. Updates in → neutral Incoming → engine → rendered outputs."""
