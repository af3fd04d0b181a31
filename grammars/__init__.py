"""The .arch grammar (arch.lark) and its LALR tables, generated from it (arch_tables.py)."""
