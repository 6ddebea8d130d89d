"""The fault suite (``make faults``): faults injected while traffic flows through every service
on a three-broker stack of the suite's own, then an exact account of every message.

``scenarios`` says what each fault does and how it is undone, ``traffic`` sends the simulated
day and keeps the book of what was acknowledged, ``suite`` runs them and checks the outcome.
"""
