"""Importing this module registers every conversation handler with the router."""

from bot.conversations import binding, buyer, cards, consignor, dashboard, staff, status

__all__ = ["binding", "buyer", "cards", "consignor", "dashboard", "staff", "status"]
