"""Why records are (or are not) one customer, for stewards and auditors.

``pair.explain_pair`` explains the match weight of two records and what was decided
about them; ``customer.explain_customer`` explains what holds a whole customer together.
Both only read the warehouse (a read-only connection is enough).
"""
