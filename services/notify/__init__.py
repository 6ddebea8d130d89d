"""Notify: emails practitioners about their patients' stays, once per event and recipient."""
