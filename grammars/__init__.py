"""The .arch grammar (`arch.lark`, LALR) and its parse tables as plain data (`arch_tables.json`,
remade by `python -m archc.lang.parser` after an edit). A package only so that an installed
archc finds them as `archc.grammars` (pyproject.toml maps this folder in)."""
