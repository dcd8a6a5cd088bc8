"""Read one delivery of a source (a file, or a table or query in a database) as text.

Every reader returns a :class:`~linkage.ingest.readers.delivery.Delivery`: an Arrow table
whose columns are all strings, with each row's position in the delivery and any problem
that stops it being read faithfully (kept, so staging can quarantine it). One module per
format:

- :mod:`~linkage.ingest.readers.files`: a delivered file, read by its extension;
- :mod:`~linkage.ingest.readers.csv_text`: CSV with Python's ``csv`` module;
- :mod:`~linkage.ingest.readers.plain_csv`: the fast path for plain CSV, with Arrow;
- :mod:`~linkage.ingest.readers.json_text`: JSON Lines and JSON arrays;
- :mod:`~linkage.ingest.readers.database`: Parquet, DuckDB files and SQLAlchemy URLs;
- :mod:`~linkage.ingest.readers.delivery`: the delivery, its row problems, ``SourceError``.
"""
