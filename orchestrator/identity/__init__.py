"""Who is acting and what they may do: passwords, API tokens, the acting principal, the rules.

Above `store/` (it reads users and tokens through `store/identity.py`) and below `cli/` and `server/`,
which both resolve the caller through `principal.py` and check actions through `rules.py`.
"""
