"""What each role sees and may press, independent of any Telegram framework.

An adapter turns a framework's update into an :class:`~bot.conversations.model.Incoming`,
calls :func:`bot.conversations.engine.process`, and renders the returned outputs. No aiogram
or python-telegram-bot type ever enters this package.
"""
