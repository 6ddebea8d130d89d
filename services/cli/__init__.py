"""``harpicoop``: the operator's command line (status, tail, replays, imports)."""
