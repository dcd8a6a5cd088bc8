"""The demo generator: deterministic synthetic customer records, their truth and a config.

Run it with ``python -m linkage.demo OUT --persons N --seed S``, or call
:func:`linkage.demo.generator.generate`. Its country tables are package data in
``linkage/demo/countries/*.json``.
"""
