"""The triton backend's plan, without torch: `plan` decides the fusions (merged GEMMs, pool
projections, mlpconvs, epilogues, concat buffers); `buffers` writes them into emitted classes.
"""
