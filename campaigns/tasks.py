"""Scheduled work owned by campaigns/. Tasks call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, time_limit=10 * 60, soft_time_limit=9 * 60)
def reservations_expire_task() -> None:
    """Hourly: code reservations past their 15 minutes give their places back (a take of a
    code frees its own promotion's at once; this sweeps the rest). Twice frees nothing more."""
    from campaigns.services.codes import reservations_expire

    reservations_expire()


@shared_task(acks_late=True, time_limit=60 * 60, soft_time_limit=59 * 60)
def codes_make_task(batch_id: int) -> None:
    """Makes a batch's unique codes; run twice, or after a crash, it goes on from where it
    was and makes no more than asked."""
    from campaigns.services.batches import codes_make

    codes_make(batch_id=batch_id)


@shared_task(bind=True, acks_late=True, max_retries=10, time_limit=50 * 60,
             soft_time_limit=49 * 60)  # fmt: skip
def shop_push_task(self, promotion_id: int, connection_id: int) -> None:
    """Creates the promotion and its codes in one connected shop. A busy shop (429, 5xx,
    unreachable) is tried again with a growing wait; run twice, nothing is sent twice."""
    from campaigns.services.shops import ShopBusy, retry_wait, shop_push

    try:
        shop_push(promotion_id=promotion_id, connection_id=connection_id)
    except ShopBusy as busy:
        raise self.retry(countdown=retry_wait(self.request.retries, busy.wait), exc=busy) from busy


@shared_task(acks_late=True, time_limit=5 * 60, soft_time_limit=4 * 60)
def flows_tick_task() -> None:
    """Every minute: new activities become queued messages of the flows that react to
    them, and the messages due now go to the send tasks in chunks. Twice queues nothing
    twice and sends nothing twice."""
    from campaigns.services.flows import due_claim, flows_advance

    flows_advance()
    for chunk in due_claim():
        messages_send_task.delay_on_commit(chunk)


@shared_task(acks_late=True, time_limit=10 * 60, soft_time_limit=9 * 60)
def messages_send_task(message_ids: list[int]) -> None:
    """Sends a chunk of due messages over one connection. A message already sent, or
    taken by another worker, is passed over; one refused for now goes back to the queue."""
    from campaigns.services.sending import messages_send

    messages_send(message_ids=message_ids)


@shared_task(acks_late=True, time_limit=30 * 60, soft_time_limit=29 * 60)
def campaigns_enter_task() -> None:
    """Every 15 minutes: each running win-back campaign enters its customers once per
    merchant-local day (from the morning), each broadcast once at its time; the messages
    then go out with the flows' sends. Twice enters no one twice."""
    from campaigns.services.campaigns import campaigns_advance

    campaigns_advance()
