"""Mastering: customers into golden records, households, relationships and one view.

- :mod:`~linkage.master.golden`: survivorship rules, one golden record per customer;
- :mod:`~linkage.master.households`: customers sharing an address;
- :mod:`~linkage.master.relationships`: orders, products, stores and staff per customer;
- :mod:`~linkage.master.customer_view`: ``customer_360`` and one customer's profile;
- :mod:`~linkage.master.steps`: the mastering steps of a run.
"""
