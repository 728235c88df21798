"""aiogram update objects → the conversations' neutral :class:`Incoming`."""

from __future__ import annotations

from aiogram.types import CallbackQuery, Message, User

from bot.conversations.model import ChatUser, Document, Incoming, Photo


def _user(user: User) -> ChatUser:
    return ChatUser(user.id, user.first_name, user.language_code, user.username)


def from_message(update_id: int, message: Message, edited: bool = False) -> Incoming | None:
    if message.from_user is None or message.from_user.is_bot:
        return None
    photo = None
    if message.photo:
        biggest = message.photo[-1]
        photo = Photo(
            biggest.file_id,
            biggest.file_unique_id,
            biggest.width,
            biggest.height,
            biggest.file_size,
        )
    document = None
    if message.document:
        d = message.document
        document = Document(d.file_id, d.file_name, d.mime_type, d.file_size)
    usable = message.text is not None or photo is not None or document is not None
    # A caption belongs to its picture or file: on a video, a voice note or an animation it
    # is not taken as typed text (the bot would keep the words and drop, unsaid, what they
    # came with); such a message is "other content", refused whole with the step's own words.
    text = message.text if message.text is not None else message.caption if usable else None
    return Incoming(
        update_id=update_id,
        user=_user(message.from_user),
        chat_id=message.chat.id,
        chat_type=message.chat.type,
        thread_id=message.message_thread_id if message.is_topic_message else None,
        message_id=message.message_id,
        text=text,
        photo=photo,
        document=document,
        media_group_id=message.media_group_id,
        has_other_content=not usable,
        edited=edited,
    )


def from_callback(update_id: int, query: CallbackQuery) -> Incoming:
    message = query.message if isinstance(query.message, Message) else None
    return Incoming(
        update_id=update_id,
        user=_user(query.from_user),
        chat_id=message.chat.id if message else query.from_user.id,
        chat_type=message.chat.type if message else "private",
        thread_id=message.message_thread_id if message and message.is_topic_message else None,
        message_id=message.message_id if message else None,
        callback_data=query.data or "",
        callback_id=query.id,
    )
