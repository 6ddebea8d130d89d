"""A simulator of the eleven establishments' integration engines: a realistic day of HL7 v2.5 ADT
(IHE PAM FR) sent over MLLP to the gateway, one connection per establishment.

For tests, ``--canary FAMILY,GIVEN,YYYY-MM-DD,INS`` (or ``SIMULATOR_CANARY``, which ``harpicoop
run`` passes on) gives that identity to the first patient of each establishment whose GP is in
the directory, leaving the rest of the day unchanged: ``tests/test_make_run.py`` then searches the
platform's logs, metrics, dead letters, analytics and operator outputs for it."""
