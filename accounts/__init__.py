"""Tutor accounts: the password reset flow, with its email sent by the worker."""
