"""The demo merchant's support desk: departments, SLA policies, routing rules and canned
replies, then a few hundred tickets in four languages worked through the real services
(replies, pending, resolve, reopen, close, merge, spam, reviews and CSAT answers), spread
over the last weeks. Seeding twice changes nothing."""

from __future__ import annotations

import logging
import random
import re
from datetime import timedelta

from django.conf import settings
from django.core import mail
from django.db import transaction
from django.test import override_settings
from django.utils.timezone import now

from customers.models import Customer
from feedback.models import (
    CannedReply,
    Channel,
    CsatSurvey,
    Department,
    Feedback,
    Kind,
    Priority,
    RoutingRule,
    SlaPolicy,
    State,
)
from feedback.services.csat import csat_answer, csat_token_hash
from feedback.services.hours import support_settings_of
from feedback.services.intake import customer_reply, feedback_submit
from feedback.services.sla import sla_breaches_mark
from feedback.services.tickets import (
    feedback_merge,
    feedback_transition,
    note_add,
    review_moderate,
    staff_reply,
)
from merchants.models import Merchant, StaffMember

SLA = (
    (Priority.URGENT, 60, 480),
    (Priority.HIGH, 120, 960),
    (Priority.NORMAL, 240, 1440),
    (Priority.LOW, 480, 2880),
)

# What customers write, by topic and language: (subject, message).
WORDS = {
    "delivery": {
        "en": ("My parcel is late", "I ordered a week ago and the delivery still hasn't come."),
        "ar": ("تأخير في التوصيل", "طلبت منذ أسبوع ولم يصل الطرد بعد."),
        "fa": ("تاخیر در تحویل", "یک هفته پیش سفارش دادم و بسته هنوز نرسیده است."),
        "ru": ("Посылка опаздывает", "Заказал неделю назад, а доставка всё ещё не пришла."),
    },
    "billing": {
        "en": ("Charged twice", "I was charged twice for one order. Please refund one."),
        "ar": ("خصم مرتين", "تم خصم المبلغ مرتين لطلب واحد. أرجو استرداد أحدهما."),
        "fa": ("دو بار پول کسر شد", "برای یک سفارش دو بار پول کسر شد. لطفاً بازپرداخت کنید."),
        "ru": (
            "Списали дважды",
            "За один заказ оплата прошла дважды. Верните, пожалуйста, возврат.",
        ),
    },
    "product": {
        "en": ("Tin arrived dented", "The Sencha tin was dented and the lid doesn't close."),
        "ar": ("العلبة وصلت مكسورة", "علبة الشاي وصلت مضغوطة والغطاء لا يُغلق."),
        "fa": ("قوطی آسیب دیده بود", "قوطی چای آسیب دیده رسید و درش بسته نمی‌شود."),
        "ru": ("Банка помята", "Банка с чаем пришла помятой, крышка не закрывается."),
    },
    "question": {
        "en": ("Caffeine in green tea?", "How much caffeine is in your Sencha?"),
        "ar": ("سؤال عن الكافيين", "كم نسبة الكافيين في شاي سنشا؟"),
        "fa": ("سوال درباره کافئین", "چای سنچا چقدر کافئین دارد؟"),
        "ru": ("Кофеин в зелёном чае?", "Сколько кофеина в вашей сенче?"),
    },
    "praise": {
        "en": ("Best tea ever", "The Gold tier gift was lovely, thank you!"),
        "ar": ("أفضل شاي", "هدية المستوى الذهبي كانت رائعة، شكراً لكم!"),
        "fa": ("بهترین چای", "هدیه سطح طلایی عالی بود، ممنون!"),
        "ru": ("Лучший чай", "Подарок уровня Gold был чудесным, спасибо!"),
    },
    "suggestion": {
        "en": ("Smaller tins, please", "Could you sell 50 g tins for trying new teas?"),
        "ar": ("علب أصغر من فضلكم", "هل يمكنكم بيع علب ٥٠ غراماً لتجربة أنواع جديدة؟"),
        "fa": ("قوطی کوچک‌تر", "می‌شود قوطی ۵۰ گرمی هم بفروشید تا چای‌های تازه را امتحان کنیم؟"),
        "ru": ("Банки поменьше", "Можно продавать банки по 50 г, чтобы пробовать новые чаи?"),
    },
}
TOPIC_KIND = {
    "delivery": Kind.COMPLAINT, "billing": Kind.COMPLAINT, "product": Kind.COMPLAINT,
    "question": Kind.QUESTION, "praise": Kind.PRAISE, "suggestion": Kind.SUGGESTION,
}  # fmt: skip
REPLIES = {
    "en": "Thank you for writing. We have looked into it and sorted it out for you.",
    "ar": "شكراً لتواصلك. لقد راجعنا الأمر وتمت معالجته.",
    "fa": "از پیامتان ممنونیم. موضوع را بررسی و برطرف کردیم.",
    "ru": "Спасибо, что написали. Мы разобрались и всё исправили.",
}
FOLLOW_UPS = {
    "en": "Thanks, but it still isn't right.",
    "ar": "شكراً، لكن المشكلة ما زالت قائمة.",
    "fa": "ممنون، ولی هنوز درست نشده است.",
    "ru": "Спасибо, но всё ещё не так.",
}
REVIEWS = (
    ("SEN-100", "Sencha", 5, "Fresh, grassy and sweet. My daily cup."),
    ("EARL-200", "Earl Grey", 4, "Good bergamot, a little strong."),
    ("OOL-300", "Oolong", 2, "Tasted stale, sadly."),
    ("MAT-400", "Matcha", 5, "Bright green and smooth."),
)


def _demo_merchant() -> Merchant | None:
    return Merchant.objects.filter(slug="demo-store").first()


def _setup(merchant: Merchant, staff: dict[str, StaffMember]) -> dict[str, Department]:
    support_settings_of(merchant=merchant)
    sam, max_ = staff["support@demo.test"], staff["manager@demo.test"]
    departments = {}
    for name, members, default in (
        ("Delivery", [sam, max_], sam), ("Billing", [max_], max_), ("Product care", [sam], sam)
    ):  # fmt: skip
        department = Department.objects.create(merchant=merchant, name=name,
                                               default_assignee=default)  # fmt: skip
        department.members.set(members)
        departments[name] = department
    for priority, first, resolution in SLA:
        SlaPolicy.objects.create(
            merchant=merchant, priority=priority, first_response_minutes=first,
            resolution_minutes=resolution,
        )  # fmt: skip
    rules = (
        ("Unhappy reviews", {"rating_max": 2}, "Unhappy", "Product care", Priority.HIGH),
        ("Delivery", {"keywords": "late, delivery, parcel, shipping\nتأخير, توصيل, الطرد\n"
                                  "تاخیر, تحویل, بسته\nдоставка, посылка, опаздывает"},
         "Delivery", "Delivery", ""),
        ("Money", {"keywords": "refund, charged, invoice\nاسترداد, خصم\nبازپرداخت, پول\n"
                               "возврат, оплата, списали"},
         "Billing", "Billing", Priority.HIGH),
        ("Damaged goods", {"keywords": "dented, broken\nمكسورة, مضغوطة\nآسیب\nпомята, разбит"},
         "Damaged", "Product care", ""),
        ("Praise", {"kind": Kind.PRAISE}, "Praise", "", Priority.LOW),
    )  # fmt: skip
    for position, (name, condition, category, department, priority) in enumerate(rules):
        RoutingRule.objects.create(merchant=merchant, name=name, position=position,
                                   category=category, department=departments.get(department),
                                   priority=priority, **condition)  # fmt: skip
    # Written in the shop's four languages: an agent's reply starts in the customer's.
    canned = (
        ("Delivery", {
            "en": ("Parcel on its way",
                   "Hello {customer_name}, your parcel is on its way and tracking shows it "
                   "arriving within two days. Ticket {ticket_number}. {agent_name}, "
                   "{merchant_name}"),
            "ar": ("الطرد في الطريق",
                   "مرحبًا {customer_name}، طردك في الطريق ويُظهر التتبع وصوله خلال يومين. "
                   "التذكرة {ticket_number}. {agent_name}، {merchant_name}"),
            "fa": ("بسته در راه است",
                   "سلام {customer_name}، بسته شما در راه است و رهگیری نشان می‌دهد ظرف دو "
                   "روز می‌رسد. تیکت {ticket_number}. {agent_name}، {merchant_name}"),
            "ru": ("Посылка в пути",
                   "Здравствуйте, {customer_name}! Ваша посылка в пути, по отслеживанию она "
                   "придёт в течение двух дней. Обращение {ticket_number}. {agent_name}, "
                   "{merchant_name}"),
        }),
        ("Billing", {
            "en": ("Refund issued",
                   "Hello {customer_name}, we have refunded the second charge; it shows in 3 "
                   "to 5 days. {agent_name}"),
            "ar": ("تم رد المبلغ",
                   "مرحبًا {customer_name}، أعدنا مبلغ الخصم الثاني، وسيظهر خلال 3 إلى 5 أيام. "
                   "{agent_name}"),
            "fa": ("مبلغ بازگردانده شد",
                   "سلام {customer_name}، مبلغ برداشت دوم را بازگرداندیم؛ ظرف 3 تا 5 روز "
                   "نمایش داده می‌شود. {agent_name}"),
            "ru": ("Деньги возвращены",
                   "Здравствуйте, {customer_name}! Мы вернули второе списание, деньги придут "
                   "через 3–5 дней. {agent_name}"),
        }),
        (None, {
            "en": ("Thank you",
                   "Thank you, {customer_name}! Kind words like yours make our day. "
                   "{agent_name}"),
            "ar": ("شكرًا لك",
                   "شكرًا لك يا {customer_name}! كلماتك اللطيفة تسعدنا. {agent_name}"),
            "fa": ("سپاسگزاریم",
                   "سپاس از شما {customer_name}! سخنان مهربان شما روزمان را می‌سازد. "
                   "{agent_name}"),
            "ru": ("Спасибо",
                   "Спасибо, {customer_name}! Такие добрые слова делают наш день. {agent_name}"),
        }),
    )  # fmt: skip
    for department, texts in canned:
        CannedReply.objects.create(
            merchant=merchant, department=departments.get(department or ""),
            **{f"title_{code}": title for code, (title, _body) in texts.items()},
            **{f"body_{code}": body for code, (_title, body) in texts.items()},
        )  # fmt: skip
    return departments


def demo_feedback_seed() -> list[str]:
    merchant = _demo_merchant()
    if merchant is None or Department.objects.filter(merchant=merchant).exists():
        return []
    staff = {m.user.email: m for m in StaffMember.objects.filter(merchant=merchant)
             .select_related("user")}  # fmt: skip
    if "support@demo.test" not in staff or "manager@demo.test" not in staff:
        return []
    # Nobody reads the demo's mail: it goes to memory, where the CSAT links are picked up.
    earlier_outbox = getattr(mail, "outbox", None)
    # Its unrouted breached tickets have nobody to mail, as a shop's would: the seed doesn't
    # print a line for each of them on the terminal that runs `make run`.
    sla_log = logging.getLogger("feedback.services.sla")
    earlier_level = sla_log.level
    sla_log.setLevel(logging.WARNING)
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        mail.outbox = []
        connection = transaction.get_connection()
        waiting = len(connection.run_on_commit)
        made = _seed(merchant, staff)
        # The targets the older tickets missed, marked now: the breached view has its
        # tickets at once, and the worker's first run doesn't mail a notice for each.
        sla_breaches_mark()
        # Replies and CSAT requests are sent when the seed commits; send them now, here.
        callbacks = connection.run_on_commit[waiting:]
        del connection.run_on_commit[waiting:]
        for _savepoints, callback, _robust in callbacks:
            callback()
        _csat_answers(merchant)
    sla_log.setLevel(earlier_level)
    if earlier_outbox is None:
        del mail.outbox
    else:
        mail.outbox = earlier_outbox
    return made


def _seed(merchant: Merchant, staff: dict[str, StaffMember]) -> list[str]:
    _setup(merchant, staff)
    rng = random.Random(11)
    customers = list(Customer.objects.filter(merchant=merchant, erased_at=None)
                     .exclude(email="").order_by("pk")[:200])  # fmt: skip
    agents = [staff["support@demo.test"], staff["manager@demo.test"]]
    start = now() - timedelta(days=45)
    tickets = []
    for index in range(settings.DEMO_TICKETS):
        at = start + timedelta(minutes=rng.randint(0, 44 * 24 * 60))
        language = rng.choice(["en", "en", "ar", "fa", "ru"])
        topic = rng.choice(list(WORDS))
        subject, body = WORDS[topic][language]
        customer = customers[index % len(customers)] if customers else None
        channel = rng.choice([Channel.PORTAL, Channel.PORTAL, Channel.EMAIL, Channel.API,
                              Channel.PHONE])  # fmt: skip
        common = {"merchant": merchant, "subject": subject, "body": body, "language": language,
                  "at": at}  # fmt: skip
        if index % 10 == 0:
            sku, name, rating, text = REVIEWS[index // 10 % len(REVIEWS)]
            ticket = feedback_submit(channel=Channel.REVIEW, kind=Kind.REVIEW, customer=customer,
                                     rating=rating, product_sku=sku, product_name=name,
                                     external_id=f"demo-review-{index}",
                                     **{**common, "subject": name, "body": text})  # fmt: skip
        elif channel == Channel.EMAIL and index % 3 == 0:
            ticket = feedback_submit(channel=channel, kind=TOPIC_KIND[topic],
                                     sender_email=f"visitor{index}@demo-mail.test",
                                     sender_name=f"Visitor {index}",
                                     email_message_id=f"<demo-{index}@demo-mail.test>",
                                     **common)  # fmt: skip
        else:
            ticket = feedback_submit(
                channel=channel, kind=TOPIC_KIND[topic], customer=customer,
                rating=rng.choice([None, None, 1, 2, 3, 4, 5]),
                logged_by=agents[0] if channel == Channel.PHONE else None, **common,
            )  # fmt: skip
        tickets.append(ticket)
        _work(ticket, rng, agents, language, at)
    # A few duplicates merged into the ticket they repeat.
    open_ones = list(
        Feedback.objects.filter(pk__in=[t.pk for t in tickets], state__in=[State.NEW, State.OPEN])
        .exclude(kind=Kind.REVIEW)
        .order_by("pk")
    )
    for source, target in zip(open_ones[:6:2], open_ones[1:6:2], strict=False):
        later = max(source.created_at, target.created_at) + timedelta(minutes=30)
        feedback_merge(source=source, target=target, member=agents[0], at=later)
    return [f"{settings.DEMO_TICKETS} feedback tickets"]


def _work(ticket, rng: random.Random, agents, language: str, at) -> None:
    """Takes one ticket some way through its life, always forward in time."""
    agent = ticket.assignee or rng.choice(agents)
    ticket.refresh_from_db()
    if ticket.kind == Kind.REVIEW:
        review_moderate(feedback=ticket, approve=(ticket.rating or 0) >= 3, member=agent,
                        at=at + timedelta(hours=2))  # fmt: skip
    fate = rng.random()
    if fate < 0.12:
        return  # still new
    if fate < 0.16:
        feedback_transition(feedback=ticket, to=State.SPAM, member=agent,
                            at=at + timedelta(minutes=20))  # fmt: skip
        return
    reply_at = at + timedelta(minutes=rng.randint(10, 60 * 30))
    if rng.random() < 0.2:
        note_add(feedback=ticket, member=agent, body="Checked the order in the shop.",
                 at=reply_at - timedelta(minutes=5))  # fmt: skip
    if fate < 0.28:
        staff_reply(feedback=ticket, member=agent, body=REPLIES[language], at=reply_at)
        customer_reply(feedback=ticket, body=FOLLOW_UPS[language],
                       at=reply_at + timedelta(hours=3))  # fmt: skip
        return  # open, waiting on us
    if fate < 0.38:
        staff_reply(feedback=ticket, member=agent, body=REPLIES[language], then=State.PENDING,
                    at=reply_at)  # fmt: skip
        return
    staff_reply(feedback=ticket, member=agent, body=REPLIES[language], then=State.RESOLVED,
                at=reply_at)  # fmt: skip
    if fate < 0.48:
        again = reply_at + timedelta(days=rng.randint(1, 9))
        if again < now():
            customer_reply(feedback=ticket, body=FOLLOW_UPS[language], at=again)
            staff_reply(feedback=ticket, member=agent, body=REPLIES[language],
                        then=State.RESOLVED, at=again + timedelta(hours=4))  # fmt: skip
    elif fate < 0.6 and reply_at + timedelta(days=8) < now():
        feedback_transition(feedback=ticket, to=State.CLOSED, member=None, by="system",
                            at=reply_at + timedelta(days=7))  # fmt: skip


def _csat_answers(merchant: Merchant) -> None:
    """About two in three customers answer the survey, mostly happily."""
    rng = random.Random(12)
    comments = ["", "", "Quick and kind.", "Took a while.", "Спасибо!", "ممنون", "شكراً"]
    for message in mail.outbox:
        found = re.search(r"/feedback/csat/([\w-]+)/", message.body)
        if found is None or rng.random() > 0.65:
            continue
        token = found.group(1)
        sent = CsatSurvey.objects.get(token_hash=csat_token_hash(token)).sent_at
        rating = rng.choices([5, 4, 3, 2, 1], weights=[45, 25, 12, 10, 8])[0]
        answered = min(sent + timedelta(hours=rng.randint(1, 72)), now())
        csat_answer(merchant=merchant, token=token, rating=rating,
                    comment=rng.choice(comments), at=answered)  # fmt: skip
