"""The demo generator: deterministic synthetic customer records, their truth and a config.

Run it with ``python -m linkage.demo OUT --persons N --seed S --profile P``, or call
:func:`linkage.demo.generator.generate`. The profile (``clean``, ``realistic``, the
default, or ``hostile``) decides how many errors the data has; the rates live in
:mod:`linkage.demo.knobs`. Its country tables are package data in
``linkage/demo/countries/*.json``.
"""
