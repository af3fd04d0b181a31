"""What users read: `stats` (the counts as typed values; `to_json()` is `--json`), `tables`
(the text tables of `archc stats`), `draw` (Graphviz drawings).
"""
