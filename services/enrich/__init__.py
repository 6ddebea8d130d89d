"""Enrich: each unique stay event joined with the practitioner directory, routed or not."""
