"""The IR: `build` expands a `Program` (blocks, repetitions, concats, heads) into `graph`, a
graph of layers with the rows and claims the report and checker need.
"""
