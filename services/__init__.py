"""Harpicoop services: one package per service, shared code in ``services.common``."""
