"""A sweeper in its own process, for the tests that run several against one database.

    python -m tests.workflow.sweeper_process URL ISO_NOW
prints the number of claims it moved.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from storage.engine import make_engine
from storage.uow import UnitOfWorkFactory
from workflow.services.common import Env
from workflow.simulated import ManualClock
from workflow.sweeps import SWEEPS, run_sweep


async def main(url: str, now: str) -> int:
    engine = make_engine(url)
    try:
        env = Env(clock=ManualClock(datetime.fromisoformat(now)))
        return await run_sweep(UnitOfWorkFactory(engine), env, SWEEPS[0], batch=50)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1], sys.argv[2])))
