"""The neutral shapes of a chat exchange: what came in, what goes out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ChatUser:
    id: int
    first_name: str
    language_code: str | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class Photo:
    file_id: str
    file_unique_id: str
    width: int
    height: int
    file_size: int | None = None


@dataclass(frozen=True, slots=True)
class Document:
    file_id: str
    file_name: str | None
    mime_type: str | None
    file_size: int | None


def _command_parts(text: str) -> tuple[str, str]:
    """'/case 12' → ('case', '12'): the command ends at any white space, a line break too
    ('/case' and '12' on two lines is the same command)."""
    parts = text[1:].split(None, 1)
    if not parts or text[1:2].isspace():
        return "", ""
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One update, as the conversations see it."""

    update_id: int
    user: ChatUser
    chat_id: int
    chat_type: str = "private"
    thread_id: int | None = None
    message_id: int | None = None
    text: str | None = None
    callback_data: str | None = None
    callback_id: str | None = None
    photo: Photo | None = None
    document: Document | None = None
    media_group_id: str | None = None
    has_other_content: bool = False  # a sticker, voice, location…: something we cannot use
    edited: bool = False  # a message sent earlier, changed by its author since

    @property
    def command(self) -> tuple[str, str] | None:
        """('start', 'args') for '/start args' (also '/start@our_bot args'), else None. A
        picture's or a file's caption is never a command: the file is what was sent, and a
        caption taken as a command would drop it without a word."""
        if not self.text or not self.text.startswith("/") or self.photo or self.document:
            return None
        head, rest = _command_parts(self.text)
        name = head.split("@", 1)[0].lower()
        return (name, rest) if name else None

    @property
    def addressee(self) -> str | None:
        """The bot a command names ('our_bot' for '/start@our_bot'), else None."""
        if not self.text or not self.text.startswith("/"):
            return None
        return _command_parts(self.text)[0].partition("@")[2] or None

    @property
    def is_private(self) -> bool:
        return self.chat_type == "private"


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    data: str | None = None  # callback data (packed by bot.conversations.callbacks)
    url: str | None = None


Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True, slots=True)
class Screen:
    """A message to show: sent anew, or edited in place of the one whose button was pressed.

    ``text`` is HTML; anything a user typed must be escaped with :func:`html.escape` first.
    """

    text: str
    keyboard: Keyboard = ()
    edit: bool = False
    photo: bytes | str | None = None  # PNG bytes to upload, or a file_id to reuse
    chat_id: int | None = None  # default: the chat the update came from
    thread_id: int | None = None
    # With ``edit`` and ``chat_id``: the message to edit there, instead of the pressed one
    # (e.g. the card in a case's topic, redrawn when someone takes the case elsewhere).
    message_id: int | None = None


@dataclass(frozen=True, slots=True)
class Toast:
    """The short answer to a button press (shown as a notification or an alert)."""

    text: str
    alert: bool = False


@dataclass(frozen=True, slots=True)
class Commands:
    """The commands menu to set: for one chat (``chat_id``), or the default for everyone not
    given their own (``chat_id`` None), optionally only for users of one ``language``
    (a two-letter code; "" = any). ``commands`` are (name, description) pairs."""

    commands: tuple[tuple[str, str], ...]
    chat_id: int | None = None
    language: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to send as a document (an export, a report). Not :class:`Document`, which is
    a file a user sent us. ``caption`` is HTML, like a screen's text."""

    filename: str
    data: bytes
    caption: str = ""
    chat_id: int | None = None  # default: the chat the update came from
    thread_id: int | None = None


Output = Screen | Toast | Commands | Attachment


@dataclass(frozen=True, slots=True)
class Later:
    """Outputs made once the update's transaction has ended, for work that takes long and
    needs no database (drawing a flowchart or charts): a handler reads what it needs inside
    the transaction and returns ``Later`` with a closure over it, so the database (on SQLite,
    every other update of the process) is not held while it draws."""

    make: Callable[[], Awaitable[list[Output]]]


@dataclass(slots=True)
class Outcome:
    outputs: list[Output | Later] = field(default_factory=list)

    def screen(self, text: str, keyboard: Keyboard = (), **options: object) -> Outcome:
        self.outputs.append(Screen(text, keyboard, **options))  # type: ignore[arg-type]
        return self
