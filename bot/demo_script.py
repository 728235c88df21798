"""The offline demo: the real bot against the sandbox, on a throwaway SQLite database.

:func:`play_script` plays the source article's script — a buyer asks to return an item, the
claim is approved automatically ("please send the item back"), the waybill and its QR code
arrive, the parcel moves, is received and inspected, the refund is paid, the consignor is
told, the case completes — and then a damaged return: compensation proposed, disputed by the
consignor with a counter-offer, resolved by staff, refunded, settled, and the deduction on
the consignor's balance. Every party acts by typing and pressing in the sandbox, exactly as in
Telegram; the transcript is what each of them saw, in order.

:func:`run_demo` starts the same world and leaves it running for people to play in the
sandbox's web chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import select

from bot import i18n
from bot.app import back_office_until_quiet, run_bot
from bot.conversations.context import BotConfig, Services
from bot.demo_data import demo_orders
from bot.flood import SendLimits
from bot.scheduler import Intervals
from sandbox.app import RunningSandbox, running_sandbox
from storage import tables as t
from storage.engine import make_engine, sqlite_url_for
from storage.importer import import_orders
from storage.migrate import upgrade
from storage.uow import UnitOfWorkFactory
from workflow import lifecycle
from workflow.claims import SYSTEM
from workflow.ports import Clock
from workflow.services.accounts import mint_binding
from workflow.services.common import Env
from workflow.simulated import ManualClock, SimulatedCarrier, SimulatedPaymentGateway, SystemClock


@dataclass(frozen=True)
class Persona:
    key: str  # transcript label key (demo.party.<key>)
    user_id: int
    first_name: str
    party_kind: str | None  # "buyer" / "consignor" bound by link; None: staff (admin by config)
    party_ref: str | None


PERSONAS = (
    Persona("buyer", 1001, "Wang Mei", "buyer", "B-MEI"),
    Persona("buyer2", 1002, "Tom", "buyer", "B-TOM"),
    Persona("consignor", 2001, "Ms Lin", "consignor", "C-LIN"),
    Persona("consignor2", 2002, "Park Studio", "consignor", "C-PARK"),
    Persona("staff", 3001, "Zoe", None, None),
)
STAFF_ID = 3001
# The sandbox's flood limits run this much faster than Telegram's; the bot paces to match.
SANDBOX_SCALE = 1000.0
# Long enough that nothing runs on its own during a script: the script drives the back office.
IDLE = Intervals(
    sweeps=3600,
    providers=3600,
    payment_callbacks=3600,
    tracking=3600,
    delivery=3600,
    reconciliation=3600,
)
LIVE = Intervals(
    sweeps=5, providers=2, payment_callbacks=2, tracking=5, delivery=1, reconciliation=30
)


@dataclass
class DemoWorld:
    services: Services
    sandbox: RunningSandbox
    bot: Bot
    payment: SimulatedPaymentGateway
    carrier: SimulatedCarrier
    lang: str
    lines: list[str] = field(default_factory=list)
    seen: dict[int, dict[int, str]] = field(default_factory=dict)

    @property
    def client(self) -> Any:
        return self.sandbox.client

    def label(self, persona: Persona) -> str:
        return i18n.t(self.lang, f"demo.party.{persona.key}", name=persona.first_name)

    # --- what the parties see ---------------------------------------------------------

    async def collect(self) -> None:
        """Add what each party's chat shows that is new (or changed) since the last look."""
        await self.client.wait_idle(quiet_ms=50)
        for persona in PERSONAS:
            seen = self.seen.setdefault(persona.user_id, {})
            view = await self.client.messages(persona.user_id)
            for message in view["messages"]:
                shown = _shown(message)
                if seen.get(message["message_id"]) == shown:
                    continue
                edited = message["message_id"] in seen
                seen[message["message_id"]] = shown
                arrow = "◂" if message["outgoing"] else "▸"
                mark = i18n.t(self.lang, "demo.edited") + " " if edited else ""
                body = shown.replace("\n", "\n" + " " * 16)
                self.lines.append(f"{self.label(persona):<14} {arrow} {mark}{body}")

    def step(self, key: str, **params: Any) -> None:
        self.lines.append("")
        self.lines.append("── " + i18n.t(self.lang, f"demo.step.{key}", **params))

    # --- what the parties do ----------------------------------------------------------

    async def say(self, persona: Persona, text: str) -> None:
        sent = await self.client.send(persona.user_id, text)
        await self._handled(sent["update_id"])
        await self.collect()

    async def send_photo(self, persona: Persona, data: bytes) -> None:
        sent = await self.client.send_file(persona.user_id, "photo", data, "photo.png", "image/png")
        await self._handled(sent["update_id"])
        await self.collect()

    async def press(self, persona: Persona, label: str) -> None:
        """Press the newest button whose text contains ``label`` in the persona's chat."""
        view = await self.client.messages(persona.user_id)
        for message in reversed(view["messages"]):
            markup = message.get("reply_markup") or {}
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if label in button["text"] and button.get("callback_data"):
                        pressed = await self.client.press(
                            persona.user_id,
                            message["message_id"],
                            callback_data=button["callback_data"],
                        )
                        self.lines.append(f"{self.label(persona):<14} ▸ [{button['text']}]")
                        await self._handled(pressed["update_id"])
                        await self.collect()
                        return
        raise DemoFailed(f"{persona.first_name} has no button {label!r}")

    async def _handled(self, update_id: int) -> None:
        for _ in range(500):
            await self.client.wait_idle(quiet_ms=20)
            async with self.services.uows() as uow:
                done = await uow.session.get(t.ProcessedUpdate, ("telegram", update_id))
            if done is not None:
                await self.client.wait_idle(quiet_ms=30)
                return
        raise DemoFailed(f"update {update_id} was never handled")

    async def back_office(self, hours: float = 0) -> None:
        if hours:
            clock = self.services.env.clock
            assert isinstance(clock, ManualClock)
            clock.advance(timedelta(hours=hours))
        await back_office_until_quiet(self.services, self.bot, self.payment, self.carrier)
        await self.collect()

    # --- looking things up --------------------------------------------------------------

    async def latest_claim(self) -> int:
        async with self.services.uows() as uow:
            return int(await uow.session.scalar(select(t.Claim.id).order_by(t.Claim.id.desc())))

    async def status(self, claim_id: int) -> str:
        async with self.services.uows() as uow:
            claim = await uow.claims.get(claim_id)
            assert claim is not None
            return claim.status

    async def hand_over(self, claim_id: int) -> None:
        async with self.services.uows() as uow:
            for shipment in await uow.shipments.for_claim(claim_id):
                self.carrier.hand_over(shipment.tracking_number)


class DemoFailed(Exception):
    """The script could not go on (a button or a message it expected is missing)."""


def _shown(message: dict[str, Any]) -> str:
    text = str(message.get("text") or message.get("caption") or "")
    if message.get("photo"):
        text = "🖼 " + text
    markup = message.get("reply_markup") or {}
    labels = [b["text"] for row in markup.get("inline_keyboard", []) for b in row]
    return text + (f"  [{' | '.join(labels)}]" if labels else "")


def persona(key: str) -> Persona:
    return next(p for p in PERSONAS if p.key == key)


@asynccontextmanager
async def demo_world(
    lang: str = "en",
    clock: Clock | None = None,
    folder: Path | None = None,
    port: int = 0,
    intervals: Intervals = IDLE,
    staff_group: bool = False,
) -> AsyncIterator[DemoWorld]:
    """A fresh SQLite database with the demo orders, a sandbox, the bot polling it, and the
    demo's people bound to their accounts (the staff member is an admin by configuration).

    With ``staff_group``, the staff member is also in a forum supergroup configured as the
    staff chat, so each case that needs a person gets its own topic there (with the buyer's
    photos, which only the topic shows) — as with ``AFTERSALES_STAFF_CHAT_ID`` in production.
    """
    folder = folder or Path(tempfile.mkdtemp(prefix="aftersales-demo-"))
    engine = make_engine(sqlite_url_for(folder / "demo.db"))
    clock = clock or ManualClock()
    try:
        await upgrade(engine)
        await import_orders(engine, demo_orders(clock.now()), clock.now())
        uows = UnitOfWorkFactory(engine)
        services = Services(
            uows=uows,
            env=Env(clock=clock),
            translate=i18n.t,
            config=BotConfig(
                admins=frozenset({STAFF_ID}), send_limits=SendLimits(scale=SANDBOX_SCALE)
            ),
        )
        async with running_sandbox(port=port, scale=SANDBOX_SCALE) as sandbox:
            await _create_people(sandbox, lang)
            if staff_group:
                chat = await sandbox.client.create_chat(
                    type="supergroup",
                    is_forum=True,
                    title=i18n.t(lang, "demo.staff_group"),
                    members=[STAFF_ID],
                )
                services.config = replace(
                    services.config, staff_chat_id=int(chat["id"]), staff_language=lang
                )
            bot = Bot(
                sandbox.token, session=AiohttpSession(api=TelegramAPIServer.from_base(sandbox.url))
            )
            payment = SimulatedPaymentGateway(clock, seed=2026)
            carrier = SimulatedCarrier(clock, seed=2026)
            stop, ready = asyncio.Event(), asyncio.Event()
            running = asyncio.create_task(
                run_bot(
                    services,
                    bot,
                    payment,
                    carrier,
                    stop=stop,
                    intervals=intervals,
                    polling_timeout=1,
                    handle_signals=False,
                    on_ready=lambda _me: ready.set(),
                )
            )
            try:
                await asyncio.wait(
                    {running, asyncio.create_task(ready.wait())},
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if running.done():
                    running.result()  # the bot could not start: raise why
                world = DemoWorld(services, sandbox, bot, payment, carrier, lang)
                await _bind_everyone(world)
                yield world
            finally:
                stop.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                await bot.session.close()
    finally:
        await engine.dispose()


async def _create_people(sandbox: RunningSandbox, lang: str) -> None:
    code = "zh-hans" if lang == "zh-CN" else "en"
    for p in PERSONAS:
        await sandbox.client.create_user(id=p.user_id, first_name=p.first_name, language_code=code)


async def _bind_everyone(world: DemoWorld) -> None:
    for p in PERSONAS:
        if p.party_kind is None:
            await world.say(p, "/start")  # an admin by configuration
            continue
        async with world.services.uows() as uow:
            table = t.Buyer if p.party_kind == "buyer" else t.Consignor
            party_id = await uow.session.scalar(
                select(table.id).where(table.external_ref == p.party_ref)
            )
            assert party_id is not None, p
            token = await mint_binding(uow, world.services.env, SYSTEM, p.party_kind, party_id)
            await uow.commit()
        await world.say(p, f"/start {token}")


async def play_script(lang: str = "en", echo: Callable[[str], None] | None = None) -> list[str]:
    """Play both stories through the sandbox; returns (and echoes) the transcript lines."""
    async with demo_world(lang) as w:
        w.lines.clear()  # the binding chatter is not part of the story
        buyer, lin, staff = persona("buyer"), persona("consignor"), persona("staff")
        tom, park = persona("buyer2"), persona("consignor2")

        # 1. The source article's script: a no-reason return, approved automatically.
        w.step("article")
        await w.say(buyer, "/new")
        await w.press(buyer, "SO-1001")
        await w.press(buyer, "Vintage leather handbag")
        await w.press(buyer, i18n.t(lang, "buyer.next"))
        await w.press(buyer, i18n.t(lang, "claim_type.return_refund"))
        await w.press(buyer, i18n.t(lang, "reason.no_reason_7_days"))
        await w.say(buyer, "Changed my mind" if lang == "en" else "不想要了")
        await w.press(buyer, i18n.t(lang, "buyer.photos_done"))
        await w.press(buyer, i18n.t(lang, "buyer.confirm"))
        c1 = await w.latest_claim()
        w.step("review", number=c1)
        await w.back_office()
        w.step("drop_off", number=c1)
        await w.hand_over(c1)
        await w.back_office(hours=49)
        w.step("inspect", number=c1)
        await w.say(staff, f"/inspect {c1} intact")
        await w.back_office()
        w.step("refund", number=c1)
        await w.back_office(hours=1)
        if await w.status(c1) not in lifecycle.TERMINAL_STATES:
            raise DemoFailed(f"claim {c1} did not complete")

        # 2. A damaged return: compensation proposed, disputed, resolved by staff.
        w.step("damaged")
        await w.say(tom, "/new")
        await w.press(tom, "SO-1003")
        await w.press(tom, "Celadon tea bowl")
        await w.press(tom, i18n.t(lang, "buyer.next"))
        await w.press(tom, i18n.t(lang, "claim_type.return_refund"))
        await w.press(tom, i18n.t(lang, "reason.no_reason_7_days"))
        await w.say(tom, "Not for me after all" if lang == "en" else "不太合适")
        await w.press(tom, i18n.t(lang, "buyer.photos_done"))
        await w.press(tom, i18n.t(lang, "buyer.confirm"))
        c2 = await w.latest_claim()
        await w.back_office()
        await w.hand_over(c2)
        await w.back_office(hours=49)
        w.step("inspect_damaged", number=c2)
        await w.say(staff, f"/inspect {c2} damaged 50 consignor")
        await w.back_office()
        w.step("consignor_disputes", number=c2)
        await w.press(park, i18n.t(lang, "notify.open_claim"))
        await w.press(park, i18n.t(lang, "trigger.dispute_compensation"))
        await w.say(park, "20")
        await w.back_office()
        w.step("staff_resolves", number=c2)
        await w.say(staff, f"/case {c2}")
        await w.press(staff, i18n.t(lang, "trigger.resolve_compensation"))
        await w.say(staff, "30")
        await w.back_office()
        await w.back_office(hours=1)
        w.step("balance")
        await w.say(park, "/balance")
        await w.say(lin, "/balance")
        lines = list(w.lines)
    for line in lines:
        if echo is not None:
            echo(line)
    return lines


async def run_demo(
    lang: str = "en",
    port: int = 0,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """The demo for people: a sandbox web chat where the demo's buyers, consignors and staff
    can be played, on a real clock with the back office running; until ``stop`` is set."""
    stop = stop or asyncio.Event()
    async with demo_world(
        lang, clock=SystemClock(), port=port, intervals=LIVE, staff_group=True
    ) as w:
        if on_ready is not None:
            on_ready(f"{w.sandbox.url}/")
        await stop.wait()
