"""Reference implementation of the DWCP v3 protocol core (HDE, AMST, PBA, ASS, ACP, ITP, migration)."""
