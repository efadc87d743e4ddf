"""Notify: what the platform tells people (通知推送)."""
