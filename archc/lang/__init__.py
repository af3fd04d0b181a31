"""The language: .arch text to a checked-for-syntax `ast.File`, and its `use` imports.

`parser` (the only Lark user), `ast` (frozen dataclasses with spans), `loader` (files and
`use`), `evaluate` (expressions to numbers), `units` (counts as papers print them).
"""
