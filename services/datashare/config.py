"""Datashare's own settings (`YIMEN_DATASHARE_*`): the limits on look-ups and verification and the thresholds
of the access watch (安全监控), so a city tunes them without code changes."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class DatashareConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIMEN_DATASHARE_", extra="ignore")

    #: Look-ups without an application (admin, supervisor, with a written reason) per account per hour.
    reasoned_lookups_per_hour: int = 20
    #: Public certificate verifications per client address per minute (number + code, signed copies).
    verifications_per_client_per_minute: int = 30
    #: Failed verifications (a wrong verification code) of one certificate per hour before it answers 429.
    failed_verifications_per_certificate_per_hour: int = 5
    #: A token below this assurance level (claim `level`) is not given a holder's data.
    holder_min_level: int = 2

    # --- the access watch: each rule counts over `watch_window_minutes` ---------------------------------------
    watch_window_minutes: int = 60
    #: Distinct people whose data one reader read without an application of its own (look-ups by reason).
    watch_outside_case_holders: int = 10
    #: Refused reads by one reader.
    watch_refused_reads: int = 5
    #: Failed certificate verifications from one client address.
    watch_failed_verifications: int = 10
    #: Reads of personal data by staff or systems during the night (Asia/Shanghai), per reader.
    watch_night_reads: int = 3
    night_starts_hour: int = 22
    night_ends_hour: int = 6
    #: The department told about anomalies: 罗定市政务服务数据管理局.
    data_office: str = "LD-ZSJ"
