"""The demo shop's mail: a thank-you, a shipped notice, a welcome, a points reminder, a
tier-down warning and a second-order nudge, written in the four languages; their flows
on; and the recent orders' thank-yous sent through the real services, with what the ESP
would have reported of them. The demo's past mail is recorded, not delivered: it goes to
a connection that drops it."""

from __future__ import annotations

from datetime import time

from anymail.signals import AnymailTrackingEvent
from django.core.mail import get_connection
from django.utils.timezone import now

from campaigns.models import Flow, Message, MessageTemplate, SendingSettings
from campaigns.services.flows import flow_save
from campaigns.services.sending import message_queue, messages_send
from campaigns.services.tracking import tracking_record
from customers.models import Activity, Customer
from merchants.models import Merchant

TEMPLATES = {
    "Thank you": ("transactional", {
        "en": ("Thank you for your order, {{ first_name }}",
               "Hello {{ first_name }},\n\nThank you for order {{ order_number }}. We are "
               "packing it now.\n\nYou have {{ balance }} points: {{ rewards_link }}"),
        "ar": ("شكرًا لطلبك يا {{ first_name }}",
               "مرحبًا {{ first_name }}،\n\nشكرًا على الطلب {{ order_number }}. نحن نجهزه "
               "الآن.\n\nلديك {{ balance }} نقطة: {{ rewards_link }}"),
        "fa": ("{{ first_name }}، از سفارش شما سپاسگزاریم",
               "سلام {{ first_name }}،\n\nاز سفارش {{ order_number }} سپاسگزاریم. در حال "
               "بسته‌بندی آن هستیم.\n\n{{ balance }} امتیاز دارید: {{ rewards_link }}"),
        "ru": ("Спасибо за заказ, {{ first_name }}",
               "Здравствуйте, {{ first_name }}!\n\nСпасибо за заказ {{ order_number }}. Мы "
               "уже собираем его.\n\nУ вас {{ balance }} баллов: {{ rewards_link }}"),
    }),
    "Shipped": ("transactional", {
        "en": ("Order {{ order_number }} is on its way",
               "{{ first_name }}, your order {{ order_number }} has left our shop."),
        "ar": ("الطلب {{ order_number }} في الطريق",
               "{{ first_name }}، غادر طلبك {{ order_number }} متجرنا."),
        "fa": ("سفارش {{ order_number }} در راه است",
               "{{ first_name }}، سفارش {{ order_number }} از فروشگاه ارسال شد."),
        "ru": ("Заказ {{ order_number }} в пути",
               "{{ first_name }}, ваш заказ {{ order_number }} уже отправлен."),
    }),
    "Welcome": ("marketing", {
        "en": ("Welcome to {{ store_name }}", "Hello {{ first_name }}, welcome! Your "
               "rewards are waiting: {{ rewards_link }}"),
        "ar": ("مرحبًا بك في {{ store_name }}", "مرحبًا {{ first_name }}! مكافآتك بانتظارك: "
               "{{ rewards_link }}"),
        "fa": ("به {{ store_name }} خوش آمدید", "سلام {{ first_name }}، خوش آمدید! جوایزتان "
               "منتظر شماست: {{ rewards_link }}"),
        "ru": ("Добро пожаловать в {{ store_name }}", "Здравствуйте, {{ first_name }}! Ваши "
               "награды ждут: {{ rewards_link }}"),
    }),
    "Points expiring": ("marketing", {
        "en": ("{{ points_expiring }} points expire on {{ expiring_on }}",
               "{{ first_name }}, use your points before {{ expiring_on }}."),
        "ar": ("تنتهي {{ points_expiring }} نقطة في {{ expiring_on }}",
               "{{ first_name }}، استخدم نقاطك قبل {{ expiring_on }}."),
        "fa": ("{{ points_expiring }} امتیاز در {{ expiring_on }} منقضی می‌شود",
               "{{ first_name }}، پیش از {{ expiring_on }} از امتیازهایتان استفاده کنید."),
        "ru": ("{{ points_expiring }} баллов сгорят {{ expiring_on }}",
               "{{ first_name }}, используйте баллы до {{ expiring_on }}."),
    }),
    "Tier at risk": ("marketing", {
        "en": ("Keep your {{ tier }} status",
               "{{ first_name }}, your {{ tier }} status ends on {{ tier_ends_on }}. "
               "{{ to_keep_tier }} more before then keeps it."),
        "ar": ("حافظ على مستوى {{ tier }}",
               "{{ first_name }}، ينتهي مستوى {{ tier }} في {{ tier_ends_on }}. "
               "{{ to_keep_tier }} إضافية قبل ذلك تحفظه لك."),
        "fa": ("سطح {{ tier }} خود را نگه دارید",
               "{{ first_name }}، سطح {{ tier }} شما در {{ tier_ends_on }} پایان می‌یابد. "
               "{{ to_keep_tier }} دیگر تا آن روز آن را نگه می‌دارد."),
        "ru": ("Сохраните уровень {{ tier }}",
               "{{ first_name }}, ваш уровень {{ tier }} закончится {{ tier_ends_on }}. "
               "Ещё {{ to_keep_tier }} до этого дня сохранят его."),
    }),
    "Come back": ("marketing", {
        "en": ("Time for a fresh pot, {{ first_name }}?",
               "{{ first_name }}, your tea from {{ store_name }} may be running low. "
               "You have {{ balance }} points: {{ rewards_link }}"),
        "ar": ("هل حان وقت إبريق جديد يا {{ first_name }}؟",
               "{{ first_name }}، ربما أوشك شايك من {{ store_name }} على النفاد. "
               "لديك {{ balance }} نقطة: {{ rewards_link }}"),
        "fa": ("{{ first_name }}، وقت یک قوری تازه است؟",
               "{{ first_name }}، شاید چای شما از {{ store_name }} رو به پایان باشد. "
               "{{ balance }} امتیاز دارید: {{ rewards_link }}"),
        "ru": ("{{ first_name }}, пора заварить свежий чай?",
               "{{ first_name }}, возможно, чай из {{ store_name }} заканчивается. "
               "У вас {{ balance }} баллов: {{ rewards_link }}"),
    }),
}  # fmt: skip
FLOWS = {"post_purchase": "Thank you", "shipped": "Shipped", "welcome": "Welcome",
         "points_expiring": "Points expiring", "tier_down": "Tier at risk",
         "second_order": "Come back"}  # fmt: skip
RECENT_ORDERS = 12


def demo_messages_seed() -> list[str]:
    merchant = Merchant.objects.filter(slug="demo-store").first()
    if merchant is None or MessageTemplate.objects.filter(merchant=merchant).exists():
        return []
    SendingSettings.objects.create(merchant=merchant, quiet_from=time(21), quiet_until=time(8))
    templates = {}
    for name, (kind, texts) in TEMPLATES.items():
        template = MessageTemplate(merchant=merchant, name=name, kind=kind)
        for language, (subject, body) in texts.items():
            setattr(template, f"subject_{language}", subject)
            setattr(template, f"body_{language}", body)
        template.save()
        templates[name] = template
    flows = {
        trigger: flow_save(
            merchant=merchant,
            flow=None,
            actor=None,
            data={"trigger": trigger, "template": templates[name], "enabled": True},
        )
        for trigger, name in FLOWS.items()
    }
    # The latest orders' thank-yous, as the flow would have sent them.
    recent = Activity.objects.filter(merchant=merchant, kind=Activity.Kind.ORDER_PLACED).order_by(
        "-occurred_at"
    )[:RECENT_ORDERS]
    customers = Customer.objects.in_bulk({a.customer_id for a in recent})
    queued = [
        message_queue(
            customer=customers[a.customer_id],
            template=templates["Thank you"],
            key=f"flow:{flows['post_purchase'].pk}:{a.pk}",
            flow=flows["post_purchase"],
            data=a.data,
            send_after=now(),
        )
        for a in recent
    ]
    ids = [m.pk for m in queued if m is not None]
    outcomes = messages_send(message_ids=ids, connection=get_connection(
        "django.core.mail.backends.dummy.EmailBackend"))  # fmt: skip
    sent = Message.objects.filter(pk__in=ids, state=Message.State.SENT).order_by("pk")
    for n, message in enumerate(sent):
        _reported(message, "delivered")
        if n % 2 == 0:
            _reported(message, "opened", agent="Mozilla/5.0 (Windows NT 10.0) Firefox/133.0")
        if n % 4 == 0:
            _reported(message, "clicked")
    Flow.objects.filter(pk__in=[f.pk for f in flows.values()]).update(scanned_until=now())
    done = sum(1 for outcome in outcomes.values() if outcome == "sent")
    return [f"4 message templates and flows for {merchant.slug}, {done} thank-yous sent"]


def _reported(message: Message, kind: str, agent: str = "") -> None:
    """What an ESP's webhook would have said, through the same service it goes to."""
    tracking_record(esp="demo", event=AnymailTrackingEvent(
        event_type=kind, message_id=message.esp_message_id, timestamp=now(),
        event_id=f"demo-{kind}-{message.pk}", recipient=message.address, user_agent=agent,
        click_url="https://demo-store.example/tea" if kind == "clicked" else None,
        metadata={"regulars_message": str(message.pk)}, esp_event={},
    ))  # fmt: skip
