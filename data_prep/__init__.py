"""Building training patch files: ``mefgan patches`` (see ``data_prep.build``).

``sources`` finds scenes (SICE, exposure brackets, single photos), ``synth`` simulates exposures
of a well-exposed photo, ``patches`` cuts scenes into patches and writes the HDF5 file.
"""
