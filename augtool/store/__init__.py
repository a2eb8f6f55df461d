"""What is on disk: the dataset schema, codecs, the writers, atomic publishing, and reading.

* ``schema``: the folder and HDF5 forms of an ``expand`` output
  (``docs/dataset-format.md``);
* ``guard``: the one guarded way into a dataset made elsewhere (paths,
  headers, records checked before use);
* ``decode`` and ``encode``: image files to RGB arrays and back;
* ``dataset``: :func:`open_dataset`, an output read back as arrays;
* ``writers`` and ``journal``: the single writer of ``expand`` (folder or
  HDF5), resumable, as a context manager;
* ``publish``: staged outputs renamed into place in one step;
* ``ledger``: the record of every read of a dataset's test images.
"""
