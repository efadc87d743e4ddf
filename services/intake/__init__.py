"""Intake: Applications (办件): one-window acceptance online and at any window, one-time notice, reuse, receipts, status, appointments, consultations."""
