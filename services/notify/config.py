"""Notify's own settings (`YIMEN_NOTIFY_*`): the SMS gateway, the app-push webhook, quiet hours, retry and rate
bounds, the live stream's limits and the daily jobs. Whatever a city decides locally lives here."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotifyConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIMEN_NOTIFY_", extra="ignore")

    #: The SMS gateway's send endpoint (HTTP JSON) and key; empty URL = SMS is recorded as failed, never sent.
    sms_gateway_url: str = "http://127.0.0.1:8190/simulator/v1/sms/messages"
    sms_gateway_key: str = "sandbox-key"
    #: Where the gateway posts delivery receipts (our public route), and the Standard Webhooks secret it signs
    #: them with.
    sms_callback_url: str = "http://127.0.0.1:8107/notify/v1/sms/receipts"
    sms_callback_secret: str = "whsec_" + "eWltZW4tbm90aWZ5LXNhbmRib3gtc2VjcmV0"
    #: The signature carriers require at the head of every SMS (it counts toward the 70 characters).
    sms_signature: str = "【罗定政务】"
    #: The front end's push webhook (Standard Webhooks, as workflow sends them); empty = no push channel.
    push_webhook_url: str = ""
    push_webhook_secret: str = "whsec_" + "eWltZW4tbm90aWZ5LXB1c2gtc2VjcmV0LWRldg=="
    #: Quiet hours (Asia/Shanghai) for everyone who has not chosen their own; non-urgent SMS and push wait.
    quiet_start: str = "22:00"
    quiet_end: str = "08:00"
    #: SMS and push per recipient and hour; beyond it messages wait (never dropped).
    per_person_per_hour: int = 10
    #: Retries: first pause, the cap, and how long a message may wait for the gateway before it fails.
    retry_base_seconds: float = 2.0
    retry_cap_seconds: float = 60.0
    give_up_after_hours: float = 24.0
    #: The dispatcher's longest pause. Its own process's commits wake it and the due times it knows are waited for
    #: exactly, so this only bounds how late it sees a message another replica committed and did not send.
    dispatch_poll_seconds: float = 10.0
    #: While a replica sends a claimed message, others leave it alone this long.
    claim_seconds: float = 30.0
    #: Mobile numbers of department contacts (department code → number), for yellow/red cards and anomalies.
    department_contacts: dict[str, str] = Field(default_factory=dict)
    #: Mobile numbers of supervisors who receive the daily digest by SMS (everyone with the role sees it in-app).
    supervisor_contacts: list[str] = Field(default_factory=list)
    #: The department that answers for data sharing (数据管理局): access anomalies go to its contact.
    data_office_department: str = "LD-ZSJ"
    #: Days before a certificate's expiry when its holder is reminded, per certificate type code; the default
    #: for the rest.
    expiry_notice_days: dict[str, int] = Field(default_factory=dict)
    expiry_notice_default_days: int = 30
    #: Local time (Asia/Shanghai) after which each day's jobs (expiry reminders, the supervisors' digest) run.
    daily_at: str = "09:00"
    daily_check_seconds: float = 60.0
    #: Live stream: a comment line this often, at most this long per connection, at most this many per person.
    stream_heartbeat_seconds: float = 15.0
    stream_max_seconds: float = 1800.0
    stream_max_per_person: int = 3
    stream_poll_seconds: float = 1.0
    #: Live-stream steps older than this are deleted by the daily job (a client resumes within minutes).
    feed_retention_days: int = 30
