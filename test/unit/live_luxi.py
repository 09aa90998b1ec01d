"""The master's real luxi handlers in-process, for tests that run gnt-* commands or RAPI requests
against a real job queue, processor and config (test/queue_ctx.Ctx): each call goes through
LuxiHandlers with its arguments and answer encoded as on the wire, errors as the wire carries them."""
from __future__ import annotations

import pytest

from genet import errors, luxi, serializer
from genet.masterd import LuxiHandlers

from queue_ctx import Ctx


def wire_call(handlers: LuxiHandlers, method: str, *args):
    func = getattr(handlers, method)
    try:
        result = func(*serializer.loads(serializer.dumps(list(args))))
    except errors.GenericError as err:
        raise errors.from_wire(serializer.loads(serializer.dumps(errors.to_wire(err)))) from None
    return serializer.loads(serializer.dumps(result))


@pytest.fixture
def master(tmp_path, monkeypatch):
    """A Ctx whose luxi every luxi.Client in the test reaches."""
    ctx = Ctx(tmp_path, workers=4)
    ctx.submit = ctx.processor.submit           # MasterContext.submit, without its offline-node check
    handlers = LuxiHandlers(ctx)
    monkeypatch.setattr(luxi.Client, "call", lambda self, method, *args: wire_call(handlers, method, *args))
    yield ctx
    for job_id in list(ctx.queue._active):
        ctx.processor.cancel(job_id)
    ctx.close()
