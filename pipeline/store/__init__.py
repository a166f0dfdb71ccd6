"""The HDF5 feature store: format, kinds (embedding/tabular), checks, merge, quarantine, import.

The only contract between extract and classify. Imports neither stage.
"""
