"""A simulator of the eleven establishments' integration engines: a realistic day of HL7 v2.5 ADT
(IHE PAM FR) sent over MLLP to the gateway, one connection per establishment."""
