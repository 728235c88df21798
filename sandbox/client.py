"""A small async client for the control API, so tests and benchmarks read as behaviour.

Every method is one ``/sandbox/...`` call; a 4xx/5xx answer raises :class:`ControlError`
carrying the sandbox's explanation.
"""

from __future__ import annotations

from typing import Any

import aiohttp


class ControlError(Exception):
    def __init__(self, status: int, body: Any):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class SandboxClient:
    def __init__(self, url: str):
        self.url = url
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.session.request(method, f"{self.url}{path}", **kwargs) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise ControlError(response.status, body)
            return body

    # --- users and chats ----------------------------------------------------------------

    async def create_user(self, **user: Any) -> dict[str, Any]:
        return dict((await self.request("POST", "/sandbox/users", json=user))["user"])

    async def create_chat(self, **chat: Any) -> dict[str, Any]:
        return dict((await self.request("POST", "/sandbox/chats", json=chat))["chat"])

    async def create_topic(self, chat_id: int, user_id: int, name: str) -> dict[str, Any]:
        body = {"user_id": user_id, "name": name}
        return dict(await self.request("POST", f"/sandbox/chats/{chat_id}/topics", json=body))

    async def delete_topic(self, chat_id: int, thread_id: int) -> None:
        await self.request("DELETE", f"/sandbox/chats/{chat_id}/topics/{thread_id}")

    # --- what users do ------------------------------------------------------------------

    async def send(self, user_id: int, text: str, **extra: Any) -> dict[str, Any]:
        body = {"user_id": user_id, "text": text, **extra}
        return dict(await self.request("POST", "/sandbox/messages", json=body))

    async def send_file(
        self,
        user_id: int,
        kind: str,
        data: bytes,
        filename: str,
        content_type: str = "application/octet-stream",
        **fields: Any,
    ) -> dict[str, Any]:
        form = aiohttp.FormData()
        form.add_field("user_id", str(user_id))
        for key, value in fields.items():
            form.add_field(key, str(value))
        form.add_field(kind, data, filename=filename, content_type=content_type)
        return dict(await self.request("POST", "/sandbox/messages", data=form))

    async def press(self, user_id: int, message_id: int, **button: Any) -> dict[str, Any]:
        body = {"user_id": user_id, "message_id": message_id, **button}
        return dict(await self.request("POST", "/sandbox/press", json=body))

    async def block(self, user_id: int, blocked: bool = True) -> None:
        await self.request("POST", "/sandbox/block", json={"user_id": user_id, "blocked": blocked})

    # --- what users see and what the bot did --------------------------------------------

    async def messages(self, chat_id: int, thread_id: int | None = None) -> dict[str, Any]:
        params = {} if thread_id is None else {"thread_id": str(thread_id)}
        return dict(await self.request("GET", f"/sandbox/chats/{chat_id}/messages", params=params))

    async def calls(self, **filters: Any) -> dict[str, Any]:
        params = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in filters.items()}
        return dict(await self.request("GET", "/sandbox/calls", params=params))

    async def fault(self, **fault: Any) -> dict[str, Any]:
        return dict((await self.request("POST", "/sandbox/faults", json=fault))["fault"])

    async def clear_faults(self) -> None:
        await self.request("DELETE", "/sandbox/faults")

    async def wait_idle(self, quiet_ms: int = 100, timeout_ms: int = 10_000) -> dict[str, Any]:
        body = {"quiet_ms": quiet_ms, "timeout_ms": timeout_ms}
        return dict(await self.request("POST", "/sandbox/wait-idle", json=body))

    async def wait_calls(self, timeout_ms: int = 10_000, **match: Any) -> list[dict[str, Any]]:
        """The logged calls matching ``match`` (method, ok, text_contains, params, count,
        distinct), once there are enough; raises :class:`ControlError` (408) if they never come."""
        body = {"timeout_ms": timeout_ms, **match}
        return list((await self.request("POST", "/sandbox/wait-calls", json=body))["calls"])

    async def reset(self) -> None:
        await self.request("POST", "/sandbox/reset")
