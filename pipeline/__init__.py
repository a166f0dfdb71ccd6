"""The shared core, and the one place that wires the stages together.

* ``store/``    the HDF5 feature store (the only contract between extract and classify)
* ``dataset/``  building a manifest: source -> filter -> label -> save; demo phantoms; context tables
* ``sources/``  one parser per data source; ``labels/`` label vocabularies, rules and masking
* ``manifest``, ``families``, ``registry``, ``errors``, ``helpers``, ``logs``: shared pieces
* ``cli`` / ``commands``: the CLI layer, the only modules that import the stages (lazily)

Nothing outside the CLI layer imports ``extract`` or ``classify``.
"""
