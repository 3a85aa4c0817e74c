"""Quarantine you can act on: see why rows failed, fix them, and replay them into the lake.

``lineage``: the columns a replayed row carries (its row number, source file, fix and run);
``summary``: a partition's quarantine read and summarised (reasons, counts, samples), and the summary
the gate keeps in the quarantine manifest; ``fixes``: the declarative ``fixes:`` of the pipeline YAML
applied to quarantined rows; ``submission``: a partition's quarantine exported to CSV and an edited
file checked and stored; ``replay``: the fixed rows re-validated against the current suite, the
passing ones committed as a new attempt of ``validated`` (the old one kept), the others left in
quarantine with their new reasons. Pure Python over ``Storage``; no Airflow import.
"""
